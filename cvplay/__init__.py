"""cvplay: a computer-vision playground.

The core package never imports Streamlit or TensorFlow at import time. Serving code
(images, registry, runtime, detect, augment) needs only NumPy, Pillow, OpenCV and LiteRT;
everything that needs TensorFlow lives in :mod:`cvplay.training`, imported lazily.
"""

__version__ = "0.1.0"
