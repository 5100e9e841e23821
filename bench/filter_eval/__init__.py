"""The filter evaluation set: does a recipe's filter chain keep good text and catch junk?

`python -m bench.filter_eval [--split dev|test] [--recipe recipes/default.yaml] [--misclassified N]`
builds the set when it is missing or its code changed (`build.py`, about 15 s), runs the recipe's
per-document steps over one split with every kind mixed in one source (`evaluate.py`), prints
per kind the share removed and the reasons, checks the floors (junk >= 95 % removed, clean
<= 10 %), and writes bench/results/filter_eval_<split>.json. Tune on dev; report test.

Clean, real text only (all English), each document cut to 20,000 characters at a line break and
kept only from 50 words and 300 characters on (`common.py`):
  books         Project Gutenberg (English books, licence header/footer left out), tinyshakespeare
  encyclopedic  WikiText-2 articles and English MediaWiki pages (markup kept; redirects left out)
  web           DCLM Common Crawl pages labelled high quality by people
  code          CPython's stdlib; installed packages' .py files; /usr/include headers; Perl modules
  docs          /usr/share/doc READMEs; packages' .md/.rst; METADATA long descriptions; man pages
  changelogs    Debian changelogs, upstream changelogs and NEWS files; packages' CHANGES/HISTORY
  licences      /usr/share/common-licenses, Debian copyright files, packages' LICENSE/COPYING
(`shared_sources.py` reads ../shared/data/raw, `local_sources.py` this machine's files.)

Junk: non_english is real (UDHR translations, non-English Gutenberg books, a Bulgarian Wikipedia
page); the other ten kinds are generated, seeded, from the split's own clean prose (`junk.py`,
with the template phrases of `phrases.py`, halved between the splits).

Split (`split.py`): by group (book, article, Debian source package, Python distribution, header
directory, UDHR language), never by document, so test never shares a file or package with dev;
near-identical texts (a licence with another copyright line) are kept once.

The local sources depend on what is installed: the results name the data's sha256, and numbers
compare only between runs on the same data.
"""
