"""Hugging Face datasets: a dataset saved with `save_to_disk` (read with `load_from_disk`), or
anything `load_dataset` understands (a data-files directory, a hub id).

`load_dataset` runs with `streaming=True`: rows come straight from the files in order, without
first copying the whole dataset into the Arrow cache (or downloading all of a hub dataset).
Rows are numbered from 0 (`dataset[row]`). Derived ids name the split when one was chosen
(`source/name/split#row`) so that two splits of one dataset never share an id. A path that is
not a dataset, or a hub dataset that cannot be reached, raises: that is a configuration problem,
not bad input.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

from pipeline.document import Document
from pipeline.readers import BadRecord
from pipeline.readers.common import RecordMapper, read_arrow_batches


def read_hf(
    mapper: RecordMapper, *, split: str | None = None, batch_size: int = 1024
) -> Iterator[Document | BadRecord]:
    """Documents of one dataset. `split` picks a split of a saved DatasetDict (needed only when
    it has several) or of a `load_dataset` dataset (default "train")."""
    import datasets

    path = mapper.path
    if (path / "dataset_dict.json").is_file() or (path / "state.json").is_file():
        dataset = datasets.load_from_disk(str(path))
        if isinstance(dataset, datasets.DatasetDict):
            if split is None:
                if len(dataset) != 1:
                    raise ValueError(f"{path} has splits {sorted(dataset)}: choose one with split=...")
                split = next(iter(dataset))
            dataset = dataset[split]
        elif split is not None:
            raise ValueError(f"{path} is a single saved Dataset, it has no split {split!r}")
    else:
        split = split or "train"
        dataset = datasets.load_dataset(str(path), split=split, streaming=True)
    if split is not None:
        mapper = dataclasses.replace(mapper, name=f"{mapper.name}/{split}")
    yield from read_arrow_batches(dataset.with_format("arrow").iter(batch_size=batch_size), mapper)
