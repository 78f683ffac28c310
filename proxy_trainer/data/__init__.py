"""The proxy's data: COCO-format files, the synthetic dataset, the preprocessing cache, the input pipeline."""
