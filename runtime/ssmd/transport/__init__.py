"""NATS JetStream: the embedded server, connections, streams and KV buckets."""
