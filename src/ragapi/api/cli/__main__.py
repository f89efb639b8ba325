from ragapi.api.cli import app

app()
