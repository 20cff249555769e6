module sentinel/bench/loadgen

go 1.22
