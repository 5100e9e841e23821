"""MinHash near-duplicate detection at corpus scale, used by the `minhash_dedup` step.

shingles (text to shingle hashes) -> signatures (datasketch-equal MinHash, LSH band keys) ->
lsh (band-partitioned files, candidate pairs) -> verify (true Jaccard) -> clustering
(union-find, in memory or out of core) -> keep (the keep rule) -> index (incremental runs);
plan runs those phases through the executor, report writes the corpus-report section.
"""
