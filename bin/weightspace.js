#!/usr/bin/env node
import { main } from '../dist/client/cli/main.js';

process.exitCode = await main(process.argv.slice(2));
