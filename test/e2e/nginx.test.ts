// End to end through nginx: examples/nginx/conflict-gate.conf (auth_request + the replay of denials)
// in front of the gate on examples/gate.yaml, real Redis, and a recording upstream.
import { proxySuite } from './suite.js';

proxySuite('nginx');
