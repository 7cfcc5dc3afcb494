/** Every CLI command, by name, filled explicitly. */
import type { Command } from '../command.js';
import { clusterCommand } from './cluster.js';
import { coordinatorCommand } from './coordinator.js';
import { demoCommand } from './demo.js';
import { diffCommand } from './diff.js';
import { evalCommand } from './eval.js';
import { mergeCommand } from './merge.js';
import { analyzeCommand } from './analyze.js';
import { directionCommand } from './direction.js';
import { loraCommand } from './lora.js';
import { monitorCommand } from './monitor.js';
import { patchCommand } from './patch.js';
import { projectCommand } from './project.js';
import { inspectCommand } from './inspect.js';
import { runCommand } from './run.js';
import { steerCommand } from './steer.js';
import { synthCommand } from './synth.js';
import { workerCommand } from './worker.js';

export const COMMANDS: readonly Command[] = [
  demoCommand,
  synthCommand,
  inspectCommand,
  diffCommand,
  evalCommand,
  mergeCommand,
  steerCommand,
  monitorCommand,
  directionCommand,
  projectCommand,
  patchCommand,
  analyzeCommand,
  loraCommand,
  runCommand,
  coordinatorCommand,
  workerCommand,
  clusterCommand,
];
