"""What a conversation may be given (the migration checks them too): knowledge bases as a question names them.
Apart from the tables, so that the API's bodies (`ragapi.schemas`, shared with the client) read them without
the ORM."""

from __future__ import annotations

from ragapi.retrieval.knowledge_bases import MAX_NAME_CHARS, MAX_REFS

MAX_TITLE_CHARS = 200
MAX_KNOWLEDGE_BASES = MAX_REFS
MAX_KNOWLEDGE_BASE_CHARS = MAX_NAME_CHARS
