"""grist corpus pipeline: raw text in, verified tokenized shards out."""
