"""Login by WeChat code, for every kind of app: mini-program, official account, website, app."""
