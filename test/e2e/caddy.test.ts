// End to end through Caddy: examples/caddy/Caddyfile (forward_auth, keepalive off) in front of the
// gate on examples/gate.yaml, real Redis, and a recording upstream.
import { proxySuite } from './suite.js';

proxySuite('caddy');
