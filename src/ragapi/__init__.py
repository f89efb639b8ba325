"""ragapi: a multi-tenant retrieval-augmented generation API whose isolation and permissions PostgreSQL
enforces. The domains are the subpackages; `ragapi.api` is the HTTP surface over them."""
