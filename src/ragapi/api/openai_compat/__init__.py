"""The OpenAI-compatible surface: `POST /v1/chat/completions` and `GET /v1/models`, where a model is a
knowledge base the credential may use (or several, joined with `+`), so that any client of "an
OpenAI-compatible base URL" asks our answering service.

    schemas   the wire format: the request as OpenAI documents it (what is honoured, ignored, refused),
              completions, chunks and models
    models    a model name ↔ the knowledge bases it means
    errors    every error on these paths in OpenAI's shape and status, with its rate-limit headers
    routes    the routes: credential → tenant → limits → the messages read → follow-up rewritten →
              admitted (quota, cache) → answered → sent as a completion or as chunks
"""
