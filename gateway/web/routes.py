"""The web routes the gateway mounts: the pages' stylesheet, the hosted login page, logout."""

from __future__ import annotations

from starlette.routing import BaseRoute, Route

from gateway.web import login, scan, sms, wechat
from gateway.web.pages import STATIC_PATH, stylesheet


def routes() -> list[BaseRoute]:
    return [
        Route(f"{STATIC_PATH}/{{name}}", stylesheet, methods=["GET"]),
        Route("/login", login.login_page, methods=["GET"]),
        Route("/login", login.login_submit, methods=["POST"]),
        Route(login.DONE, login.done_page, methods=["GET"]),
        Route("/login/scan", scan.collect, methods=["POST"]),
        Route("/login/sms", sms.log_in, methods=["POST"]),
        Route("/login/sms", sms.to_tab, methods=["GET"]),
        Route("/login/sms/code", sms.send_code, methods=["POST"]),
        Route("/login/sms/code", sms.to_tab, methods=["GET"]),
        Route("/login/wechat", wechat.start, methods=["GET"]),
        Route(wechat.CALLBACK, wechat.callback, methods=["GET"]),
        Route("/logout", login.logout_page, methods=["GET"]),
        Route("/logout", login.logout_submit, methods=["POST"]),
    ]
