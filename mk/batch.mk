# mk/batch.mk: batch benchmarks. `make bench-batch` (RUNS=1 for a quick look).

.PHONY: bench-batch
bench-batch: rock
	@bash bench/batch.sh
