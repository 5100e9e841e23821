"""Built-in steps, one file each. `BUILTIN_STEPS` maps a recipe name to `module:Class`.

Steps are imported lazily by dotted path, the same way user plugins are, so a recipe that
does not tokenize never imports the tokenizer and a plugin is no second-class citizen.
"""

BUILTIN_STEPS: dict[str, str] = {
    "normalize": "pipeline.steps.normalize:Normalize",
    "encoding": "pipeline.steps.encoding:EncodingFilter",
    "language": "pipeline.steps.language:LanguageFilter",
    "gopher_quality": "pipeline.steps.gopher_quality:GopherQualityFilter",
    "gopher_repetition": "pipeline.steps.gopher_repetition:GopherRepetitionFilter",
    "c4": "pipeline.steps.c4:C4Filter",
    "fineweb": "pipeline.steps.fineweb:FineWebFilter",
    "code_quality": "pipeline.steps.code_quality:CodeQualityFilter",
    "exact_dedup": "pipeline.steps.exact_dedup:ExactDedup",
    "minhash_dedup": "pipeline.steps.minhash_dedup:MinHashDedup",
    "decontaminate": "pipeline.steps.decontaminate:Decontaminate",
    "quality_score": "pipeline.steps.quality_score:QualityScore",
    "junk_score": "pipeline.steps.junk_score:JunkScore",
    "mix": "pipeline.steps.mix:Mix",
    "tokenize": "pipeline.steps.tokenize:Tokenize",
}

DEFAULT_SINK = "tokenize"  # appended to a recipe that names no sink (see pipeline.recipe)
