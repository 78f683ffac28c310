"""The detector trained for each architecture: SpineNet inside RetinaNet, with anchors, losses and post-processing."""
