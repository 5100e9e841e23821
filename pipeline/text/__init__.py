"""Text as arrays: the one place grist normalises, splits and hashes text.

* `hashing`: the polynomial hash engine. One base for code units, one for sequences of
  hashes, one pair of power tables, one mixer; a prefix sum over an array of code units
  hashes every span of it at once. Everything below hashes through it.
* `words`: normalised words of UTF-8 bytes (datatrove's normalisation) and their hashes,
  what near-duplicate detection (`pipeline.minhash`) and decontamination
  (`pipeline.decontam`) match on. Their values are persistent: MinHash signatures and the
  shipped benchmark pack are made of them.

Nothing is imported here, so that importing one module does not pay for the others.
"""
