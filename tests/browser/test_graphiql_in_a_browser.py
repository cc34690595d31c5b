"""GraphiQL in Chromium: it loads and runs a query, asking nothing of any
origin but the service's, with nothing refused by the page's policy."""

from __future__ import annotations

from playwright.async_api import Browser, ConsoleMessage, Request


async def test_graphiql_loads_offline_and_runs_a_query(browser: Browser, service: str) -> None:
    page = await browser.new_page()
    asked: list[str] = []
    complaints: list[str] = []
    page.on("request", lambda request: asked.append(request.url))

    def complaint(message: ConsoleMessage) -> None:
        if message.type == "error":
            complaints.append(message.text)

    page.on("console", complaint)

    await page.goto(f"{service}/graphql")
    await page.wait_for_selector(".graphiql-container", timeout=20_000)
    await page.click(".graphiql-execute-button")
    result = page.locator(".result-window")
    await result.get_by_text('"me": null').wait_for(timeout=20_000)

    outside = [url for url in asked if not url.startswith((service, "data:"))]
    assert outside == []
    assert complaints == []
    assert any(url.endswith("/static/graphiql/graphiql.min.js") for url in asked)


async def test_a_query_in_the_address_opens_in_graphiql_and_runs(
    browser: Browser, service: str
) -> None:
    page = await browser.new_page()
    posted: list[Request] = []
    page.on("request", lambda request: posted.append(request) if request.method == "POST" else None)
    await page.goto(f"{service}/graphql?q=%7B%20__typename%20%7D")
    await page.wait_for_selector(".graphiql-container", timeout=20_000)

    await page.click(".graphiql-execute-button")
    await page.locator(".result-window").get_by_text('"__typename": "Query"').wait_for()

    assert posted and all(r.url == f"{service}/graphql" for r in posted)
