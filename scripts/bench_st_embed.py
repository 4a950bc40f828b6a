#!/usr/bin/env python3
"""Reference figure for `lanceflow-bench embed`: sentence-transformers on
PyTorch CPU, same texts, same thread count.

Usage: bench_st_embed.py MODEL_DIR TEXTS_JSON THREADS BATCH OUT_NPY
Prints one JSON object: seconds, texts_per_second, peak_rss_mb.
Writes the embeddings to OUT_NPY so the caller can compare vectors.
"""
import json
import resource
import sys
import time


def main() -> None:
    model_dir, texts_path, threads, batch, out = sys.argv[1:6]
    import numpy as np
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(int(threads))
    texts = json.load(open(texts_path))
    model = SentenceTransformer(model_dir, device="cpu")
    model.encode(texts[:64], batch_size=int(batch))  # warm-up
    start = time.perf_counter()
    vectors = model.encode(
        texts, batch_size=int(batch), normalize_embeddings=True, convert_to_numpy=True
    )
    seconds = time.perf_counter() - start
    np.save(out, vectors.astype("float32"))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "seconds": seconds,
                "texts_per_second": len(texts) / seconds,
                "peak_rss_mb": peak,
                "torch": torch.__version__,
            }
        )
    )


if __name__ == "__main__":
    main()
