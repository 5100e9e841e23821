"""grist's trainer: a GPT trained on the shards a grist corpus holds (see train/loop.py)."""
