"""The reward's measurement: COCO box AP with pycocotools."""
