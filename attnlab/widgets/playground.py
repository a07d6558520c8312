"""Notebook 08: the sampling playground: sliders for temperature, top-k and top-p over a
live bar chart of the next token, and a button that writes samples with those settings
(:func:`sampling_playground`).
"""

from __future__ import annotations

import html

import ipywidgets as widgets
import jax
import jax.numpy as jnp
import numpy as np

from attnlab.widgets._common import _show_char
from attnlab.widgets.next_token import _encode, _last_logits

__all__ = ["SamplingPlayground", "sampling_playground"]


@jax.jit
def _filtered_view(logits: jax.Array, temperature, top_k, top_p):
    """For ``(V,)`` logits: probabilities after temperature, the kept mask, the renormalised
    probabilities. The settings are traced: moving a slider never recompiles."""
    from attnlab.sampling import apply_temperature, top_k_filter, top_p_filter

    logits = logits - logits.max()  # changes no probability; no overflow at tiny temperatures
    scaled = apply_temperature(logits, temperature)
    filtered = top_p_filter(top_k_filter(scaled, top_k), top_p)  # the order generate uses
    return jax.nn.softmax(scaled), jnp.isfinite(filtered), jax.nn.softmax(filtered)


def _unescape(stop: str) -> str:
    """The stop box takes ``\\n`` and ``\\t`` for a newline and a tab (a Text box cannot hold
    a newline)."""
    return stop.replace("\\n", "\n").replace("\\t", "\t")


class SamplingPlayground(widgets.VBox):
    """Sliders for temperature, top-k and top-p over a live bar chart of the next token.

    The chart (drawn by :func:`attnlab.viz.plot_next_token_distribution`) shows the model's
    distribution of the token after the prompt, after temperature; kept tokens blue, filtered
    ones grey, with the kept probability mass. "generate" writes ``n samples`` continuations
    side by side, each with its own random draws, from the seed in the seed box.

    A slider move reruns only the filters (one compiled function with traced settings) and
    redraws the chart in place; editing the prompt also reruns the model (one compiled shape
    for every prompt length). Nothing raises: an empty prompt, unknown characters or a failed
    generation show their message in ``info`` (and ``error``) instead.

    Attributes:
      prompt: ``Textarea`` with the context.
      temperature, top_k, top_p: the sliders (``top_k = 0`` and ``top_p = 1`` switch that
        filter off; ``temperature = 0`` is greedy decoding).
      max_new_tokens, n_samples, seed, stop: generation settings; ``stop`` is an optional
        stop string (type ``\\n`` for a newline): a sample ends right after the stop string
        first appears in its new text (see :func:`attnlab.sampling.generate_text`).
      button: the "generate" ``Button`` (``button.click()`` generates, as a click does).
      chart: ``Image`` holding the PNG bar chart (empty while there is an error).
      info: ``HTML`` line under the chart: kept tokens and mass, or the error text.
      output: ``HTML`` with the generated samples.
      logits: ``(V,)`` logits for the current prompt, or ``None``.
      probs, kept, final_probs: ``(V,)`` probabilities after temperature, the kept mask and the
        renormalised distribution that is sampled from; ``None`` while there is an error.
      kept_mass: probability mass of the kept tokens (after temperature), or ``None``.
      error: the text of the current error, or ``None``.
      samples: the generated texts (prompt + continuation, ending with the stop string where
        it appeared); ``stopped``: for each, whether the stop string ended it.
      last_update_ms: wall time of the last chart update (filters + drawing), in ms.
    """

    def __init__(self, model, tokenizer, *, text: str, temperature: float, top_k: int,
                 top_p: float, max_new_tokens: int, n_samples: int, seed: int, stop: str,
                 top: int) -> None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        self.model, self.tokenizer, self.top = model, tokenizer, top
        V = model.config.vocab_size
        self._labels = [tokenizer.decode([i]) for i in range(V)]
        self.logits = self.probs = self.kept = self.final_probs = None
        self.kept_mass: float | None = None
        self.error: str | None = None
        self.samples: list[str] = []
        self.stopped: list[bool] = []
        self.last_update_ms = float("nan")
        self._seen = ""
        # One figure for the widget's life, drawn without pyplot: nothing to close, no leak.
        self._figure = Figure(figsize=(9.0, 3.4), dpi=80)
        FigureCanvasAgg(self._figure)
        self._ax = self._figure.add_subplot()
        self._background, self._background_ylim = None, None  # see _png

        wide = widgets.Layout(width="95%")
        style = {"description_width": "initial"}
        self.prompt = widgets.Textarea(value=text, description="prompt", continuous_update=True,
                                       layout=widgets.Layout(width="95%", height="4em"))
        self.temperature = widgets.FloatSlider(
            value=temperature, min=0.0, max=3.0, step=0.05, description="temperature",
            readout_format=".2f", continuous_update=True, style=style)
        self.top_k = widgets.IntSlider(value=top_k, min=0, max=V, step=1,
                                       description="top-k (0 = off)", continuous_update=True,
                                       style=style)
        self.top_p = widgets.FloatSlider(value=top_p, min=0.01, max=1.0, step=0.01,
                                         description="top-p (1 = off)", readout_format=".2f",
                                         continuous_update=True, style=style)
        self.chart = widgets.Image(format="png")
        self.info = widgets.HTML(value="")
        self.max_new_tokens = widgets.IntSlider(value=max_new_tokens, min=1, max=400,
                                                description="max new tokens", style=style)
        self.n_samples = widgets.IntSlider(value=n_samples, min=1, max=4,
                                           description="samples", style=style)
        self.seed = widgets.IntText(value=seed, description="seed", style=style,
                                    layout=widgets.Layout(width="160px"))
        self.stop = widgets.Text(value=stop, description="stop string", style=style,
                                 placeholder=r"optional, e.g. \n")
        self.button = widgets.Button(description="generate", button_style="primary")
        self.output = widgets.HTML(value="")

        self.prompt.observe(self._on_prompt, names="value")
        for slider in (self.temperature, self.top_k, self.top_p):
            slider.observe(self._on_slider, names="value")
        self.button.on_click(self._on_click)
        super().__init__(children=[
            self.prompt,
            widgets.HBox([self.temperature, self.top_k, self.top_p]),
            self.chart,
            self.info,
            widgets.HBox([self.max_new_tokens, self.n_samples, self.seed]),
            widgets.HBox([self.stop, self.button]),
            self.output,
        ], layout=wide)
        self._on_prompt({"new": text})

    # --- the chart ----------------------------------------------------------------------------

    def _fail(self, error: Exception) -> None:
        self.logits = self.probs = self.kept = self.final_probs = self.kept_mass = None
        message = str(error) if isinstance(error, ValueError) else (
            f"unexpected {type(error).__name__}: {error}")
        self.error = message
        self.chart.value = b""
        self.info.value = f'<span style="color: #b3261e">{html.escape(message)}</span>'

    def _on_prompt(self, change: dict) -> None:
        text = change["new"]
        try:
            if not text:
                raise ValueError("The prompt is empty: type at least one character; the model "
                                 "needs a context to predict the next token.")
            ids = _encode(self.tokenizer, text)
            C = self.model.config.context_length
            self.logits = _last_logits(self.model, ids)
            self._seen = (f" · the model sees only the last {C} of your {len(ids)} characters "
                          "(its context window)" if len(ids) > C else "")
        except Exception as error:  # shown in the widget, never raised into the notebook
            self._fail(error)
            return
        self._redraw()

    def _on_slider(self, change: dict) -> None:
        if self.logits is not None:
            self._redraw()

    def _redraw(self) -> None:
        import time

        from attnlab.viz import plot_next_token_distribution

        start = time.perf_counter()
        try:
            probs, kept, final = _filtered_view(
                jnp.asarray(self.logits), jnp.float32(self.temperature.value),
                jnp.int32(self.top_k.value), jnp.float32(self.top_p.value))
            probs, kept, final = (np.asarray(a) for a in (probs, kept, final))
            self.probs, self.kept, self.final_probs = probs, kept, final
            self.kept_mass = float(probs[kept].sum())
            plot_next_token_distribution(probs, self._labels, kept, ax=self._ax, top=self.top,
                                         title="next token after the prompt")
            self.chart.value = self._png()
        except Exception as error:
            self._fail(error)
            return
        self.error = None
        self.last_update_ms = 1e3 * (time.perf_counter() - start)
        best = int(np.argmax(final))
        self.info.value = (
            f"kept {int(kept.sum())} of {kept.size} tokens ({self.kept_mass:.1%} of the mass); "
            f"most likely after renormalising: <code>{html.escape(_show_char(self._labels[best]))}"
            f"</code> at {final[best]:.1%}{self._seen}")

    def _png(self) -> bytes:
        """The chart as PNG bytes. Only what changes with the sliders is drawn again (bars,
        ticks, token labels, the summary) over a saved picture of the rest (frame, title,
        legend, y-axis); the whole figure is drawn when the y-axis range changes."""
        import io

        from PIL import Image

        canvas, ax = self._figure.canvas, self._ax
        parts = ax._attnlab_next_token
        changing = [*parts["bars"], parts["ticks"], parts["summary"], ax.xaxis]
        if self._background is None or ax.get_ylim() != self._background_ylim:
            for artist in changing:
                artist.set_animated(True)  # left out of canvas.draw(): not in the background
            canvas.draw()
            self._background = canvas.copy_from_bbox(self._figure.bbox)
            self._background_ylim = ax.get_ylim()
        else:
            canvas.restore_region(self._background)
        for artist in changing:
            self._figure.draw_artist(artist)
        image = Image.frombuffer("RGBA", canvas.get_width_height(), canvas.buffer_rgba(),
                                 "raw", "RGBA", 0, 1)
        buffer = io.BytesIO()
        image.save(buffer, format="png", compress_level=1)  # fast; the chart is small anyway
        return buffer.getvalue()

    # --- generation ---------------------------------------------------------------------------

    def _on_click(self, _button=None) -> None:
        self.generate()

    def generate(self) -> None:
        """Generate ``n_samples`` continuations with the current settings (what a click does)."""
        import time
        import warnings

        from attnlab.sampling import generate_text

        text, n, max_new = self.prompt.value, self.n_samples.value, self.max_new_tokens.value
        stop = _unescape(self.stop.value) or None
        start = time.perf_counter()
        try:
            if not text:
                raise ValueError("The prompt is empty: type at least one character to continue.")
            ids = _encode(self.tokenizer, text)
            if stop is not None:
                try:
                    _encode(self.tokenizer, stop)
                except ValueError as error:
                    raise ValueError(f"stop string {stop!r}: {error}") from None
            with warnings.catch_warnings():  # a prompt longer than the context is cropped
                warnings.simplefilter("ignore")
                texts = generate_text(
                    self.model, self.tokenizer, [text] * n, max_new,
                    temperature=self.temperature.value, top_k=self.top_k.value,
                    top_p=self.top_p.value, key=jax.random.key(int(self.seed.value) % 2**32),
                    stop=stop)
        except Exception as error:
            self.samples, self.stopped = [], []
            message = str(error) if isinstance(error, ValueError) else (
                f"unexpected {type(error).__name__}: {error}")
            self.error = message
            self.output.value = f'<span style="color: #b3261e">{html.escape(message)}</span>'
            return
        self.error = None
        self.samples, self.stopped, boxes = texts, [], []
        for i, sample in enumerate(texts, start=1):
            continuation = sample[len(text):]
            stopped = stop is not None and continuation.endswith(stop)
            self.stopped.append(stopped)
            end = (f"stopped at the stop string after {len(continuation)} characters" if stopped
                   else f"max new tokens reached ({max_new})")
            boxes.append(
                '<div style="flex: 1; min-width: 200px; border: 1px solid #ccc; padding: 4px;">'
                f"<div><i>sample {i}</i></div>"
                f'<pre style="white-space: pre-wrap; margin: 2px 0;"><b>{html.escape(text)}</b>'
                f"{html.escape(continuation)}</pre><div><i>{end}</i></div></div>")
        seconds = time.perf_counter() - start
        C = self.model.config.context_length
        cropped = (f" · the model saw only the last {C} of the {len(ids)} prompt characters"
                   if len(ids) > C else "")
        top_k = self.top_k.value or "off"
        top_p = self.top_p.value if self.top_p.value < 1 else "off"
        self.output.value = (
            f"<div><i>{n} sample{'s' if n > 1 else ''} · seed {self.seed.value} · temperature "
            f"{self.temperature.value:.2f} · top-k {top_k} · top-p {top_p} · {seconds:.1f} s "
            f"(a new prompt length or max tokens compiles first){cropped}</i></div>"
            f'<div style="display: flex; gap: 8px; flex-wrap: wrap;">{"".join(boxes)}</div>')


def sampling_playground(model, tokenizer, *, text: str = "The value of ",
                        temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0,
                        max_new_tokens: int = 100, n_samples: int = 3, seed: int = 0,
                        stop: str = "", top: int = 24) -> SamplingPlayground:
    """A prompt, sliders for temperature, top-k and top-p, a live next-token bar chart and a
    "generate" button: how the sampling settings change the next token and the text.

    Args:
      model: a trained :class:`attnlab.gpt.GPT`.
      tokenizer: its tokenizer (``encode``/``decode``), e.g. a ``CharTokenizer``.
      text: the starting prompt.
      temperature: in ``[0, 3]``; top_k: in ``[0, V]`` (0 = off); top_p: in ``[0.01, 1]``
        (1 = off): the sliders' starting positions.
      max_new_tokens: in ``[1, 400]``; n_samples: in ``[1, 4]``; seed: any int; stop: a stop
        string (``\\n`` = newline) or ``""``: the generation settings.
      top: how many bars the chart shows (the most likely tokens).

    Returns:
      a :class:`SamplingPlayground` (an ``ipywidgets.VBox``); its chart is drawn already.

    Raises:
      ValueError: if a starting value is outside its slider's range or ``top < 1``.
    """
    V = model.config.vocab_size
    ranges = {"temperature": (temperature, 0.0, 3.0), "top_k": (top_k, 0, V),
              "top_p": (top_p, 0.01, 1.0), "max_new_tokens": (max_new_tokens, 1, 400),
              "n_samples": (n_samples, 1, 4), "top": (top, 1, V)}
    for name, (value, low, high) in ranges.items():
        if isinstance(value, bool) or not isinstance(value, int | float | np.number) or not (
                low <= value <= high):
            raise ValueError(f"{name} must be in [{low}, {high}]; got {value!r}.")
    return SamplingPlayground(model, tokenizer, text=text, temperature=temperature,
                              top_k=int(top_k), top_p=top_p, max_new_tokens=int(max_new_tokens),
                              n_samples=int(n_samples), seed=int(seed), stop=stop, top=int(top))
