"""`python -m bench.samples`: what a running service answers, next to the references.

Asks a service's `/translate` (as a user would) for a few everyday sentences, for every
Nth pair of each validation split of a training recipe (carved again with the recipe's
seed, in the direction asked), and for a paragraph of consecutive validation sentences sent
whole and sentence by sentence. Prints Markdown tables.

    python -m bench.samples --url http://127.0.0.1:8000 --source de --target en \\
        --recipe recipes/translation-general.toml --data-dir ../shared/data
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import httpx
import typer

from model.cli import setup_logging, user_errors

app = typer.Typer(add_completion=False, help=__doc__)
Opt = typer.Option
EVERYDAY = {
    "en": [
        "I love you.",
        "Please send me the invoice by Friday.",
        "The government announced new taxes on fuel.",
    ],
    "de": [
        "Ich liebe dich.",
        "Bitte schicken Sie mir die Rechnung bis Freitag.",
        "Die Regierung kündigte neue Steuern auf Kraftstoff an.",
    ],
}


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


class Service:
    def __init__(self, url: str, source: str, target: str, api_key: str | None) -> None:
        self.http = httpx.Client(base_url=url, timeout=300)
        self.body = {"source": source, "target": target, "format": "text"}
        if api_key:
            self.body["api_key"] = api_key

    def translate(self, texts: list[str]) -> list[str]:
        response = self.http.post("/translate", json={**self.body, "q": texts})
        if response.status_code != 200:
            raise ValueError(f"/translate answered {response.status_code}: {response.text}")
        return [str(text) for text in response.json()["translatedText"]]


def _table(rows: list[tuple[str, ...]], header: tuple[str, ...]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(_cell(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


@app.command()
@user_errors
def main(
    source: Annotated[str, Opt(help="source language code")] = "en",
    target: Annotated[str, Opt(help="target language code")] = "de",
    url: Annotated[str, Opt(help="the running service")] = "http://127.0.0.1:8000",
    api_key: Annotated[str | None, Opt(envvar="SAMPLES_API_KEY", help="if it asks for one")] = None,
    recipe: Annotated[Path, Opt(help="the training recipe")] = Path(
        "recipes/translation-general.toml"
    ),
    data_dir: Annotated[Path, Opt(help="the recipe's data root")] = Path("../shared/data"),
    seed: Annotated[int, Opt(help="the seed the validation splits were carved with")] = 1234,
    per_split: Annotated[int, Opt(min=1, help="pairs shown per validation split")] = 10,
    paragraph_split: Annotated[str, Opt(help="split the paragraph comes from")] = "newstest",
    paragraph_at: Annotated[int, Opt(min=0, help="its first sentence's index")] = 1200,
    paragraph_sentences: Annotated[int, Opt(min=2, max=20)] = 4,
) -> None:
    """Print the service's answers next to the references, as Markdown."""
    from model import mixture

    setup_logging()
    service = Service(url, source, target, api_key)
    everyday = EVERYDAY.get(source, [])
    if everyday:
        answers = service.translate(everyday)
        print(f"#### Everyday sentences ({source}->{target})\n")
        print(_table(list(zip(everyday, answers, strict=True)), ("source", "ours")) + "\n")

    specs, _ = mixture.read_recipe(recipe)
    splits = mixture.build(specs, data_dir, source, target, seed=seed).validation
    for name, pairs in splits.items():
        step = max(1, len(pairs) // per_split)
        chosen = pairs[::step][:per_split]
        answers = service.translate([s for s, _ in chosen])
        rows = [(s, ours, ref) for (s, ref), ours in zip(chosen, answers, strict=True)]
        print(f"#### {name} (every {step}th validation pair)\n")
        print(_table(rows, ("source", "ours", "reference")) + "\n")

    pairs = splits.get(paragraph_split)
    if pairs is None:
        raise ValueError(f"no split {paragraph_split!r}; the recipe has {', '.join(splits)}")
    chosen = pairs[paragraph_at : paragraph_at + paragraph_sentences]
    if len(chosen) < paragraph_sentences:
        raise ValueError(f"{paragraph_split} has {len(pairs)} pairs, fewer than asked for")
    paragraph = " ".join(s for s, _ in chosen)
    [whole] = service.translate([paragraph])
    one_by_one = " ".join(service.translate([s for s, _ in chosen]))
    print(f"#### A paragraph of {paragraph_sentences} {paragraph_split} sentences\n")
    print(f"- source: {paragraph}\n- whole: {whole}\n- one by one: {one_by_one}")
    print(f"- reference: {' '.join(ref for _, ref in chosen)}")
    print(f"- whole == one by one: {whole == one_by_one}")


if __name__ == "__main__":
    app()
