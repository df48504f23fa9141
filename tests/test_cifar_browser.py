"""End to end: the home page of `streamlit run app.py` is the CIFAR-100 page; headless Debian
Chromium uploads a photo and sees the shipped CIFAR-100 model's class, its super-class and the
32x32 thumbnail the model saw."""

import pytest

from cvplay.runtime import create_classifier
from e2e_support import chromium_page, streamlit_server, wait_for_streamlit
from test_classify_browser import synthetic_photo


@pytest.mark.browser
@pytest.mark.slow
def test_home_page_classifies_a_photo_with_the_cifar_model(tmp_path):
    photo = tmp_path / "photo.png"
    classifier = create_classifier("cifar100-lite0")
    probabilities = classifier.predict_proba([synthetic_photo(photo)])
    expected = classifier.labels[int(probabilities.argmax())].replace("_", " ")
    superclass = classifier.card.coarse_labels[int(classifier.coarse_probabilities(probabilities).argmax())]
    env = {"CVPLAY_MODELS": str(tmp_path / "no-user-models"), "CVPLAY_SHARED": str(tmp_path / "no-shared"),
           "CVPLAY_CIFAR100": "", "KERAS_HOME": str(tmp_path / "no-keras"), "HOME": str(tmp_path)}
    with streamlit_server("app.py", env=env) as server, chromium_page() as page:
        page.goto(server.url + "/")
        wait_for_streamlit(page)
        page.locator("h1", has_text="CIFAR-100").wait_for(timeout=60_000)
        page.locator('[data-testid="stFileUploader"] input[type="file"]').first.set_input_files(str(photo))
        page.locator("h3", has_text=expected).first.wait_for(timeout=60_000)
        # The rest of the page arrives after the heading (images load on their own): wait for it.
        page.get_by_text(f"super-class {superclass.replace('_', ' ')}").first.wait_for(timeout=30_000)
        page.get_by_text("what the model sees").first.wait_for(timeout=30_000)
        page.get_by_text("No CIFAR-100 test set is available here").first.wait_for(timeout=30_000)
        assert page.get_by_text("what the model sees").count() == 1
        assert page.locator('[data-testid="stException"]').count() == 0
