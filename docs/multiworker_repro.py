"""Two local CPU workers under tf.distribute.MultiWorkerMirroredStrategy with Keras 3 ``fit()``.

Why cvplay's trainer has no multi-machine mode yet (issue 15, part 5). Run two workers on free
ports of 127.0.0.1, in two shells or in the background::

    python docs/multiworker_repro.py 0 PORT0,PORT1 &  python docs/multiworker_repro.py 1 PORT0,PORT1

With TensorFlow 2.21 and Keras 3.15.1 (2026-12-02) both workers connect ("workers 2") and then
``model.fit`` fails in both with ``ValueError: Attempt to convert a value (PerReplica:{...}) with
an unsupported type (<class 'tensorflow.python.distribute.values.PerReplica'>) to a Tensor`` --
the open keras-team/keras issue #20585 (Keras 3's fit() does not support
MultiWorkerMirroredStrategy). The single-machine MirroredStrategy path is unaffected.
"""
import json, os, sys
index = int(sys.argv[1]); ports = sys.argv[2].split(",")
os.environ["TF_CONFIG"] = json.dumps({"cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]}, "task": {"type": "worker", "index": index}})
os.environ["CUDA_VISIBLE_DEVICES"] = ""
import numpy as np, tensorflow as tf, keras
strategy = tf.distribute.MultiWorkerMirroredStrategy()
print("workers", strategy.num_replicas_in_sync, flush=True)
x = np.random.default_rng(0).normal(size=(64, 8, 8, 3)).astype("float32"); y = (x.mean((1, 2, 3)) > 0).astype("int32")
ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
with strategy.scope():
    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(), keras.layers.Dense(2, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
history = model.fit(ds, epochs=2, verbose=0)
print("worker", index, "loss", history.history["loss"], flush=True)
