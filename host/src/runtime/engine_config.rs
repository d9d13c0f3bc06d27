//! The wasmtime settings that compiled code and the runtime that loads it must share.
//!
//! Two builds include this file: the runtime (`runtime/mod.rs`), and `build.rs`, which
//! compiles the engine component ahead of time with Cranelift and embeds the result. So the
//! shipped binary carries no compiler, and its precompiled code always matches its engine.
//! (The e2e suite's `build.rs` includes it as well, to precompile its probe component.)

use wasmtime::{Config, InstanceAllocationStrategy, PoolingAllocationConfig};

/// Instances that can exist at once; further calls wait for a free slot.
pub const POOL_SLOTS: u32 = 128;
/// The largest memory the pool reserves room for; the runtime's memory limit is the real
/// limit and must not exceed it.
pub const POOL_MAX_MEMORY: usize = 1 << 30;

/// The engine configuration, without any compiler settings.
pub fn engine_config() -> Config {
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(POOL_SLOTS)
        .total_core_instances(POOL_SLOTS * 8)
        .total_memories(POOL_SLOTS * 2)
        .total_tables(POOL_SLOTS * 8)
        .total_stacks(POOL_SLOTS)
        .max_memory_size(POOL_MAX_MEMORY);
    let mut config = Config::new();
    config
        .epoch_interruption(true)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    config
}
