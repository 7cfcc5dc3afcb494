#!/usr/bin/env node
import { main } from '../dist/client/cli/main.js';

// a closed pipe (`weightspace inspect X | head`) ends output quietly
process.stdout.on('error', (err) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});
process.exitCode = await main(process.argv.slice(2));
