"""Text as arrays: the one place grist normalises, splits and hashes text.

* `hashing`: the polynomial hash engine. One base for code units, one for sequences of
  hashes, one pair of power tables, one mixer; a prefix sum over an array of code units
  hashes every span of it at once. Everything below hashes through it.
* `words`: normalised words of UTF-8 bytes (datatrove's normalisation) and their hashes,
  what near-duplicate detection (`pipeline.minhash`) and decontamination
  (`pipeline.decontam`) match on. Their values are persistent: MinHash signatures and the
  shipped benchmark pack are made of them.
* `stats`: whitespace tokens of code points and the statistics the heuristic filters
  (Gopher, C4, FineWeb) read. Token fingerprints are only compared with each other and
  never stored, so unlike word hashes their values may change.

Nothing is imported here, so that a step needing words does not pay for the statistics'
character table, and the other way round.
"""
