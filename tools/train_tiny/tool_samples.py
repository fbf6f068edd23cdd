"""Tool-calling chat samples for the tiny KJV model, in Gemma 4's format (spec sections 4.3-4.4).

Stdlib only. A conversation is kept in OpenAI form (messages, tools) and rendered by `render`, a
transcription of the parts of Google's gemma-4-31B-it chat template these samples use (system turn with
`<|tool>declaration:...<tool|>` blocks, `<|tool_call>call:NAME{k:v}<tool_call|>`, tool results as
`<|tool_response>response:NAME{value:...}<tool_response|>`); check_tool_samples.py holds it byte-equal to the
official .jinja rendered by jinja2. Kinds: a call that ends on the stop token `<|tool_response>` (after the
generation prompt, as a server sees it), a whole round trip rendered as history (call, result, answer), and
tools declared but not needed (a KJV answer in text).
"""

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Get the current weather in a city.",
    "parameters": {"type": "object", "properties": {
        "city": {"type": "string", "description": "The name of the city."}}, "required": ["city"]}}}
FIND_VERSE = {"type": "function", "function": {
    "name": "find_verse", "description": "Find a chapter of a book of the King James Bible.",
    "parameters": {"type": "object", "properties": {
        "book": {"type": "string", "description": "The name of the book, e.g. Genesis."},
        "chapter": {"type": "integer", "description": "The chapter number."}}, "required": ["book", "chapter"]}}}
# Other wordings of the same declarations, so that a client's own descriptions still work.
WEATHER_DESCRIPTIONS = ["Get the current weather in a city.", "Get the weather for a city.",
                        "Returns the weather forecast for a given city.", "Look up the weather."]
CITY_DESCRIPTIONS = ["The name of the city.", "City name", "The city, e.g. Jerusalem.", None]
VERSE_DESCRIPTIONS = ["Find a chapter of a book of the King James Bible.", "Look up a chapter of the Bible.",
                      "Returns the text of a Bible chapter."]

KJV_CITIES = """Jerusalem Bethlehem Nazareth Babylon Nineveh Jericho Damascus Samaria Hebron Bethel Capernaum Tyre
 Sidon Gaza Joppa Antioch Ephesus Corinth Rome Tarsus Shiloh Beersheba Sodom Gomorrah Zoar Gath Ashdod Ekron Ashkelon
 Shechem Gibeah Ramah Mizpeh Bethany Emmaus Cana Caesarea Philippi Thessalonica Athens Berea Smyrna Sardis Laodicea
 Philadelphia Pergamos Thyatira Lystra Derbe Iconium Troas Miletus Gilgal Hazor Megiddo Jezreel Tirzah Zion Ur Haran
 Sychar Nain Bethsaida Chorazin Tiberias Cyrene Alexandria Colosse Lasea Puteoli Syracuse Rhegium Bozrah Heshbon
 Dibon Rabbah Tekoa Anathoth Gibeon Lachish Libnah Debir Kadesh Elath Ziklag Endor Carmel Nob Bethshemesh""".split()
OTHER_CITIES = """London Paris Berlin Tokyo Cairo Madrid Boston Chicago Lagos Lima Oslo Dublin Athens Vienna Prague
 Toronto Sydney Delhi Seoul Nairobi Amsterdam Lisbon Warsaw Denver Seattle""".split() + [
    "New York", "Tel Aviv", "San Francisco", "Rio de Janeiro", "Mexico City", "Buenos Aires"]
ASK_WEATHER = ["What is the weather in {c}?", "What's the weather in {c}?", "What is the weather like in {c}?",
               "How is the weather in {c} today?", "Is it raining in {c}?", "Tell me the weather in {c}.",
               "Weather in {c}?", "What is the forecast for {c}?", "Is it cold in {c}?", "Is it hot in {c} today?",
               "Will it rain in {c} tomorrow?", "I am going to {c}. What is the weather there?",
               "Check the weather in {c}, please.", "how is the weather in {c}", "What's the temperature in {c}?"]
ASK_CHAPTER = ["Find chapter {n} of {b}.", "Find chapter {n} of {b}", "Find {b} chapter {n}.", "Look up {b} {n}.",
               "Show me chapter {n} of {b}.", "Open {b} chapter {n}.", "I want to read chapter {n} of {b}.",
               "Get {b} {n}.", "Find {b} {n}", "Can you find chapter {n} in {b}?"]
SKIES = ["sunny", "cloudy", "rainy", "windy", "clear", "hot and dry", "cold", "stormy", "foggy", "snowy"]
SYSTEMS_WITH_TOOLS = ["You are a helpful assistant.", "You are a helpful assistant with tools.",
                      "Use the tools when they help.", "Answer in the words of the King James Bible.", "Be brief."]


def fmt_value(v):
    """The template's format_argument for the values used here (keys unescaped, as in calls and results)."""
    if isinstance(v, str):
        return '<|"|>' + v + '<|"|>'
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def fmt_declaration(tool):
    """format_function_declaration for string/integer parameters with optional descriptions."""
    f = tool["function"]
    p = f["parameters"]
    props = []
    for k in sorted(p["properties"]):
        v = p["properties"][k]
        body = f'description:<|"|>{v["description"]}<|"|>,' if v.get("description") else ""
        props.append(f'{k}:{{{body}type:<|"|>{v["type"].upper()}<|"|>}}')
    req = ",".join(f'<|"|>{r}<|"|>' for r in p["required"])
    return (f'declaration:{f["name"]}{{description:<|"|>{f["description"]}<|"|>,parameters:{{properties:{{'
            + ",".join(props) + f'}},required:[{req}],type:<|"|>{p["type"].upper()}<|"|>}}}}')


def render(conv):
    """The chat template's output for conv = {messages, tools, add_generation_prompt} plus conv["completion"]
    (what the model generates after the prompt). Only the shapes built by ToolMaker are handled."""
    msgs, tools = conv["messages"], conv["tools"]
    s = "<bos><|turn>system\n"
    if msgs[0]["role"] == "system":
        s += msgs[0]["content"].strip()
        msgs = msgs[1:]
    s += "".join("<|tool>" + fmt_declaration(t) + "<tool|>" for t in tools) + "<turn|>\n"
    prev_role, after_call = None, False
    for i, m in enumerate(msgs):
        if m["role"] == "tool":
            continue
        role = "model" if m["role"] == "assistant" else m["role"]
        if not (role == "model" and prev_role == "assistant"):
            s += f"<|turn>{role}\n"
        prev_role, after_call = m["role"], False
        calls = m.get("tool_calls") or []
        for c in calls:
            args = ",".join(f"{k}:{fmt_value(v)}" for k, v in sorted(c["function"]["arguments"].items()))
            s += f'<|tool_call>call:{c["function"]["name"]}{{{args}}}<tool_call|>'
        results = []
        for f in msgs[i + 1:] if calls else []:
            if f["role"] != "tool":
                break
            results.append(f)
        for f in results:
            name = next(c["function"]["name"] for c in calls if c["id"] == f["tool_call_id"])
            s += f'<|tool_response>response:{name}{{value:{fmt_value(f["content"])}}}<tool_response|>'
        content = m.get("content") or ""
        s += content.strip()
        if calls and not results:
            s += "<|tool_response>"
            after_call = True
        elif not (results and not content):
            s += "<turn|>\n"
        else:
            after_call = True
    if conv["add_generation_prompt"] and not after_call:
        s += "<|turn>model\n<|channel>thought\n<channel|>"
    return s + conv.get("completion", "")


class ToolMaker:
    """Draws tool conversations; `chat` is the samples.ChatMaker whose verses and questions it reuses."""

    def __init__(self, chat):
        self.chat, self.rng = chat, chat.rng
        self.chapters = {}
        for i in chat.pool:
            v = chat.v[i]
            self.chapters.setdefault((v["b"], v["c"]), i)  # first pool verse of each chapter
        self.chapter_keys = sorted(self.chapters, key=self.chapters.get)
        self.n = 0

    def declared(self, need):
        """The tool list: always `need` if given; the declarations' wording varies."""
        rng = self.rng
        w = {"type": "function", "function": dict(WEATHER["function"])}
        if rng.random() < 0.4:
            w["function"]["description"] = rng.choice(WEATHER_DESCRIPTIONS)
            city = dict(WEATHER["function"]["parameters"]["properties"]["city"])
            d = rng.choice(CITY_DESCRIPTIONS)
            if d is None:
                city.pop("description")
            else:
                city["description"] = d
            w["function"]["parameters"] = dict(WEATHER["function"]["parameters"], properties={"city": city})
        fv = {"type": "function", "function": dict(FIND_VERSE["function"])}
        if rng.random() < 0.4:
            fv["function"]["description"] = rng.choice(VERSE_DESCRIPTIONS)
        r = rng.random()
        tools = [w] if r < 0.35 else [fv] if r < 0.6 else [w, fv]
        names = [t["function"]["name"] for t in tools]
        if need and need not in names:
            tools.append(w if need == "get_weather" else fv)
        rng.shuffle(tools)
        return tools

    def conversation(self):
        rng = self.rng
        r = rng.random()
        need = "get_weather" if r < 0.45 else "find_verse" if r < 0.75 else None
        tools = self.declared(need)
        msgs = [{"role": "system", "content": rng.choice(SYSTEMS_WITH_TOOLS)}] if rng.random() < 0.4 else []
        if need is None:  # tools declared, but the question wants a text answer
            has_verse = any(t["function"]["name"] == "find_verse" for t in tools)
            q, a = self.chat.question_answer(allow_ref=not has_verse)
            msgs.append({"role": "user", "content": q})
            return {"messages": msgs, "tools": tools, "add_generation_prompt": True, "completion": a + "<turn|>\n"}
        if need == "get_weather":
            city = rng.choice(KJV_CITIES) if rng.random() < 0.8 else rng.choice(OTHER_CITIES)
            q, args = rng.choice(ASK_WEATHER).format(c=city), {"city": city}
            sky, deg = rng.choice(SKIES), rng.randint(-5, 40)
            result = f"{sky}, {deg} degrees"
            answer = rng.choice([f"In {city} it is {sky} and {deg} degrees.", f"It is {sky} in {city}, {deg} degrees.",
                                 f"The weather in {city} is {sky}, {deg} degrees."])
        else:
            b, c = rng.choice(self.chapter_keys)
            q, args = rng.choice(ASK_CHAPTER).format(b=b, n=c), {"book": b, "chapter": c}
            result = self.chat.v[self.chapters[(b, c)]]["t"]
            answer = result
        msgs.append({"role": "user", "content": q})
        self.n += 1
        call = {"id": f"call_{self.n}", "type": "function", "function": {"name": need, "arguments": args}}
        if rng.random() < 0.7:  # the call as generated: empty thought channel, call, then the stop token
            return {"messages": msgs, "tools": tools, "add_generation_prompt": True,
                    "completion": "<|tool_call>call:" + need + "{" +
                                  ",".join(f"{k}:{fmt_value(v)}" for k, v in sorted(args.items())) +
                                  "}<tool_call|><|tool_response>"}
        msgs += [{"role": "assistant", "content": None, "tool_calls": [call]},  # the round trip, as history
                 {"role": "tool", "tool_call_id": call["id"], "content": result},
                 {"role": "assistant", "content": answer}]
        return {"messages": msgs, "tools": tools, "add_generation_prompt": False, "completion": ""}
