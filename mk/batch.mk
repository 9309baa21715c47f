# mk/batch.mk: batch benchmarks. `make bench-batch` (RUNS=1 for a quick look).

.PHONY: bench-batch
bench-batch: deps rock
	@bash bench/batch.sh
