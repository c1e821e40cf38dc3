//! Criterion benchmarks of abacus; see `overhead.rs` (`cargo bench -p abacus-benches`).
