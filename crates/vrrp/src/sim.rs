//! Deterministic LAN simulator: N routers on a virtual clock with loss, delay and partitions.
