"""The baseline: a minimal Flask + torchvision eager app, as the original demo was written.

``python benchmarks/flask_baseline.py --weights FILE --port 5005`` serves ``POST /predict``
(multipart ``file``) -> top-5 ``[{label, probability}]`` with ResNet-18. Only the benchmark uses it.
"""

from __future__ import annotations

import argparse
import io

import torch
import torchvision
from flask import Flask, jsonify, request
from PIL import Image
from torchvision import transforms

from recognizer.models.labels import imagenet1k_labels


def build_app(weights: str) -> Flask:
    model = torchvision.models.resnet18()
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    model.eval()
    transform = transforms.Compose(
        [
            transforms.Resize(256),
            transforms.CenterCrop(224),
            transforms.ToTensor(),
            transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
        ]
    )
    labels = imagenet1k_labels()
    app = Flask(__name__)

    @app.post("/predict")
    def predict():
        image = Image.open(io.BytesIO(request.files["file"].read())).convert("RGB")
        with torch.no_grad():
            probs = torch.softmax(model(transform(image).unsqueeze(0)), dim=1)[0]
        top = torch.topk(probs, 5)
        return jsonify(
            [
                {"label": labels[i].label, "probability": float(p)}
                for p, i in zip(top.values, top.indices, strict=True)
            ]
        )

    return app


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--weights", required=True)
    parser.add_argument("--port", type=int, default=5005)
    args = parser.parse_args()
    build_app(args.weights).run(host="127.0.0.1", port=args.port, threaded=True)
