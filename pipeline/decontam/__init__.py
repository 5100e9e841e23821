"""Benchmark decontamination: normalized-word n-gram hashing (`ngrams`) and the hashed
benchmark pack the `decontaminate` step matches against (`pack`)."""
