"""Measure the query paths against the Lucene oracle, or record regression cases.

    python -m tests.differential measure [--seeds 0:50] [--queries 400]
        generated corpora, both modes: agreement with the oracle per mode and
        path; every disagreement is printed as one JSON line (keep them with
        ``record``).
    python -m tests.differential record CASES.jsonl
        each line ``{"name": ..., "docs": [...], "queries": [...]}``: the oracle's
        answers in both modes are added to ``regressions.json``.
    python -m tests.differential cluster URL
        the regression corpus on a real Elasticsearch/OpenSearch node (e.g. one
        started by ``python -m tests.fixtures.cluster``), indexed with the
        project's index template: the store's ES-mode answers compared with the
        node's, documents the node refuses and ``_id`` queries it refuses counted
        apart. Creates and deletes indices named ``er-differential-*``.

``measure`` and ``record`` need Java 17 and the oracle beside the checkout
(``../shared/tools/lucene-oracle``).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from tests.differential import oracle
from tests.differential.generate import corpus
from tests.differential.paths import PATHS, Corpus
from tests.differential.regressions import REGRESSIONS, load, save


def measure(seeds: range, count: int) -> int:
    agree: dict[tuple[str, str], list[int]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in seeds:
            docs, queries = corpus(seed, count=count)
            for es_mode in (True, False):
                mode = "es" if es_mode else "lucene"
                work = Path(tmp) / f"{seed}-{mode}"
                work.mkdir()
                paths = Corpus(docs, work, es_mode)
                try:
                    got = paths.outcomes(queries)
                finally:
                    paths.close()
                expected = oracle.run(paths.docs, queries, es_mode, work)
                for i, query in enumerate(queries):
                    for path in PATHS:
                        tally = agree.setdefault((mode, path), [0, 0])
                        tally[1] += 1
                        tally[0] += got[path][i] == expected[i]
                    if any(got[p][i] != expected[i] for p in PATHS):
                        row = {"seed": seed, "mode": mode, "query": query, "oracle": expected[i]}
                        row.update({p: got[p][i] for p in PATHS})
                        print(json.dumps(row, ensure_ascii=False))
    print("| mode | path | queries | agree with Lucene |", file=sys.stderr)
    print("| --- | --- | ---: | ---: |", file=sys.stderr)
    for (mode, path), (same, total) in sorted(agree.items()):
        print(f"| {mode} | {path} | {total:,} | {same:,} ({100.0 * same / total:.2f} %) |", file=sys.stderr)
    return 0


def record(cases_file: Path) -> int:
    data = load()
    with tempfile.TemporaryDirectory() as tmp:
        for line in cases_file.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            case = json.loads(line)
            answers = {
                mode: oracle.run(case["docs"], case["queries"], mode == "es", Path(tmp)) for mode in ("es", "lucene")
            }
            data["corpora"].append(
                {
                    "name": case["name"],
                    "docs": case["docs"],
                    "cases": [
                        {"query": q, "es": answers["es"][i], "lucene": answers["lucene"][i]}
                        for i, q in enumerate(case["queries"])
                    ],
                }
            )
    save(data)
    print(f"{REGRESSIONS}: {sum(len(c['cases']) for c in data['corpora'])} cases", file=sys.stderr)
    return 0


def _call(url: str, method: str, path: str, body: Any = None, ndjson: bool = False) -> Any:
    data = None if body is None else (body if ndjson else json.dumps(body)).encode("utf-8")
    kind = "application/x-ndjson" if ndjson else "application/json"
    request = urllib.request.Request(url + path, data=data, method=method, headers={"Content-Type": kind})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return json.loads(exc.read())


def cluster(url: str) -> int:
    from elastic_recheck.adapters.elastic.bulk import index_template

    mappings = index_template("logstash-%Y.%m.%d")["template"]["mappings"]
    same = total = refused_id = 0
    refused_docs: set[str] = set()
    with tempfile.TemporaryDirectory() as tmp:
        for n, case in enumerate(load()["corpora"]):
            index = f"er-differential-{n}"
            _call(url, "DELETE", f"/{index}")
            _call(url, "PUT", f"/{index}", {"settings": {"number_of_shards": 1, "number_of_replicas": 0}, "mappings": mappings})
            lines = []
            for doc in case["docs"]:
                lines += [json.dumps({"index": {"_index": index, "_id": str(doc["id"])}}), json.dumps(doc)]
            items = _call(url, "POST", "/_bulk?refresh=true", "\n".join(lines) + "\n", ndjson=True)["items"]
            refused = {i["index"]["_id"] for i in items if "error" in i["index"]}
            refused_docs |= {f"{case['name']}/{d}" for d in refused}
            work = Path(tmp) / str(n)
            work.mkdir()
            paths = Corpus(case["docs"], work, True)
            for c in case["cases"]:
                query = {"query_string": {"query": c["query"], "default_field": "message", "default_operator": "OR"}}
                got = _call(url, "POST", f"/{index}/_search", {"size": 10_000, "_source": False, "query": query})
                node: Any = "error" if "error" in got else sorted(h["_id"] for h in got["hits"]["hits"])
                ours = paths.store_outcome(c["query"])
                if isinstance(ours, list):
                    ours = [i for i in ours if i not in refused]
                total += 1
                if node == ours:
                    same += 1
                elif node == "error" and "[_id]" in json.dumps(got):
                    refused_id += 1
                else:
                    print(json.dumps({"corpus": case["name"], "query": c["query"], "node": node, "store": ours,
                                      "reason": got.get("error", {}).get("reason") if node == "error" else None},
                                     ensure_ascii=False))
            paths.close()
            _call(url, "DELETE", f"/{index}")
    print(f"{url}: {same}/{total} queries agree on the documents the node accepted; "
          f"{refused_id} refused by the node as queries on _id; {len(refused_docs)} documents refused",
          file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.differential")
    sub = parser.add_subparsers(dest="command", required=True)
    m = sub.add_parser("measure")
    m.add_argument("--seeds", default="0:50", help="START:STOP (a Python range)")
    m.add_argument("--queries", type=int, default=400)
    r = sub.add_parser("record")
    r.add_argument("cases", type=Path)
    c = sub.add_parser("cluster")
    c.add_argument("url")
    args = parser.parse_args(argv)
    if args.command == "cluster":
        return cluster(args.url.rstrip("/"))
    reason = oracle.available()
    if reason:
        print(f"cannot run: {reason}", file=sys.stderr)
        return 2
    if args.command == "measure":
        start, stop = (int(x) for x in args.seeds.split(":"))
        return measure(range(start, stop), args.queries)
    return record(args.cases)


if __name__ == "__main__":
    sys.exit(main())
