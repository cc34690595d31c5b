import dataclasses, json, httpx, pytest
from portal.app import create_app

async def show(http, q, **kw):
    r = await http.post("/graphql", json={"query": q, **kw})
    print("\n>>>", q[:120], "\n", r.status_code, r.text[:600])

async def test_explore(http, admin, settings):
    await show(http, '{ __schema { types { fields { type { fields { type { fields { type { fields { type { fields { type { fields { type { name } } } } } } } } } } } } } }')
    await show(http, '{ me { a { b { c { d { e { f { g { h { i { j { k { l } } } } } } } } } } } } }')
    await show(http, 'query cop { __typename @aa@aa@aa@aa@aa@aa@aa@aa@aa@aa }')
    await show(http, '{ ' + '__typename ' * 3000 + '}')
    await show(http, '{ ' + ' '.join(f'a{i}: __typename' for i in range(16)) + '}')
    await show(http, '{ patiens { totalCount } }')
    await show(http, 'query($x: Strin) { __typename }')
    r = await http.post("/graphql", json=[{"query": "{__typename}"}, {"query": "{__typename}"}])
    print("batch", r.status_code, r.text)
    r = await http.get("/graphql", params={"query": "mutation{logout}"})
    print("get", r.status_code, r.headers, r.text)
    r = await http.get("/graphql", params={"query": "{__typename}"})
    print("get", r.status_code, r.text)
    r = await http.post("/graphql", content=b'{"query":"{__typename}"}', headers={"content-type": "text/plain"})
    print("text", r.status_code, r.headers, r.text)
    r = await http.options("/graphql", headers={"Origin": "https://app.example", "Access-Control-Request-Method": "POST"})
    print("options", r.status_code, r.headers, r.text)
    prod = create_app(dataclasses.replace(settings, env="production"))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=prod), base_url="http://portal.test") as p:
        await show(p, '{ patiens { totalCount } }')
        await show(p, '{ me { emial } }')
        await show(p, 'query($x: Strin) { __typename }')
        await show(p, '{ patients(serch: "a") { totalCount } }')
        await show(p, '{ __schema { types { name } } }')
        await show(p, '{ __type(name: "Patient") { name } }')
        await show(p, '{ __typename }')
        r = await p.get("/graphql", headers={"Accept": "text/html"})
        print("prod get", r.status_code, r.headers, r.text)
