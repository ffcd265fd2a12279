// conflict-gate/client: publish versions from an upstream service after each successful write; optimistic writes for API consumers.
export { PublishError, VersionPublisher, type IdempotencyEnd, type KeyOwner, type PublisherTarget, type PublishResult, type RedisPublisherOptions } from './publisher.js';
export { optimisticWrite, OptimisticWriteError, type OptimisticOptions, type OptimisticResult, type OptimisticStats, type RetryEvent } from './optimistic.js';
