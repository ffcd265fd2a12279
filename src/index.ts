// The package's programmatic surface: config loading and the server, for embedding and tests.
export { loadConfigFile, loadConfigText, type ConfigIssue } from './config/load.js';
export { compileConfig, type Compiled } from './config/compile.js';
export { readConfig, readConfigText, type ReadResult } from './config/read.js';
export { configSchema, configJsonSchema, type Config, type ConfigInput } from './config/schema.js';
export { createDeps, createApps, startServer, type RunningServer } from './server.js';
export { ALLOW_HEADERS, RATE_LIMIT_HEADERS, upstreamHeaders } from './http/headers.js';
export { VersionPublisher } from './client/index.js';
