"""TensorFlow/Keras side of cvplay: backbones, pretrained weights, fitting, export.

Importing this package does not import TensorFlow; its modules do. Install with
``pip install -e ".[train]"``.
"""
