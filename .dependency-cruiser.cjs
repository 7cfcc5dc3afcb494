/** Layering and cycles: core imports nothing above it; worker and coordinator never import each other. */
module.exports = {
  forbidden: [
    { name: 'no-cycles', severity: 'error', from: {}, to: { circular: true } },
    { name: 'core-is-the-bottom', severity: 'error', from: { path: '^core/' }, to: { path: '^(worker|coordinator|client)/' } },
    { name: 'worker-not-coordinator', severity: 'error', from: { path: '^worker/' }, to: { path: '^(coordinator|client)/' } },
    { name: 'coordinator-not-worker', severity: 'error', from: { path: '^coordinator/' }, to: { path: '^(worker|client)/' } },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsConfig: { fileName: 'tsconfig.json' },
    tsPreCompilationDeps: true,
    exclude: { path: '^(dist|node_modules)/' },
  },
};
