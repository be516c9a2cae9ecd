"""``sepit serve``: an HTTP API (OpenAI-compatible chat completions, a simple ask endpoint) and a web page.

    from sepit.serve import ServeSettings, create_app
    app = create_app(Sepit.from_pretrained(folder), ServeSettings(api_key="secret"))

Layout: ``settings`` (limits), ``schemas`` (request/response models), ``protein`` (uploaded sequence/structure
-> model item), ``engine`` (one worker thread that batches requests), ``openai`` (chat-completion
responses and stream chunks), ``app`` (routes, errors, API key, body limit), ``static/`` (the page).
See docs/serving.md.
"""

from sepit.serve.app import create_app
from sepit.serve.settings import ServeSettings

__all__ = ["ServeSettings", "create_app"]
