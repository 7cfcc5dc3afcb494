/** Every CLI command, by name, filled explicitly. */
import type { Command } from '../command.js';
import { demoCommand } from './demo.js';
import { diffCommand } from './diff.js';
import { evalCommand } from './eval.js';
import { inspectCommand } from './inspect.js';
import { runCommand } from './run.js';
import { steerCommand } from './steer.js';
import { synthCommand } from './synth.js';

export const COMMANDS: readonly Command[] = [
  demoCommand,
  synthCommand,
  inspectCommand,
  diffCommand,
  evalCommand,
  steerCommand,
  runCommand,
];
