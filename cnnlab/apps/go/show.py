"""``cnnlab go show SGF [--move N] [--model M] --out PNG``: how the network sees a board.

The board of the game's main line before move N, the policy's probabilities for the side
to move as a heat map over the empty points (the colour scale is the probability), the
move actually played ringed in red, the network's top choice named in the title.
"""

from __future__ import annotations

import numpy as np

from cnnlab.apps.go.board import BLACK, PASS, WHITE, Board, IllegalMoveError
from cnnlab.apps.go.gtp import COLUMNS
from cnnlab.apps.go.positions import play_in_turn
from cnnlab.errors import CnnlabError

__all__ = ["board_before", "draw", "show_command"]

_COLOURS = {"b": BLACK, "w": WHITE}


def board_before(game, move: int) -> Board:
    """The board before move ``move`` (1-based) of ``game``, the mover to play."""
    if not 1 <= move <= len(game.moves):
        raise CnnlabError(f"{game.source}: --move must be 1..{len(game.moves)}, received {move}")
    board = Board(game.size)
    try:
        board.place_setup(game.setup_black, BLACK)
        board.place_setup(game.setup_white, WHITE)
        for number, (colour, point) in enumerate(game.moves[:move - 1]):
            play_in_turn(board, _COLOURS[colour], first=number == 0)
            board.play(PASS if point is None else point)
        play_in_turn(board, _COLOURS[game.moves[move - 1][0]], first=move == 1)
    except IllegalMoveError as error:
        raise CnnlabError(f"{game.source}: the game cannot be replayed to move {move}: "
                          f"{error}") from None
    return board


def draw(board: Board, probabilities: np.ndarray, played, title: str):
    """A matplotlib figure of the board, the heat map and the move played (or None)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Circle

    size = board.size
    figure = Figure(figsize=(7.4, 7), dpi=100)  # no pyplot: no global state (as cnnlab.plots)
    FigureCanvasAgg(figure)
    axes = figure.subplots()
    axes.set_facecolor("#dcb35c")
    for line in range(size):
        axes.plot([0, size - 1], [line, line], color="black", linewidth=0.6, zorder=1)
        axes.plot([line, line], [0, size - 1], color="black", linewidth=0.6, zorder=1)
    colours = board.colours()
    heat = np.where(colours == 0, probabilities.reshape(size, size), np.nan)
    image = axes.imshow(heat, cmap="magma_r", alpha=0.85, zorder=2, vmin=0,
                        vmax=max(float(np.nanmax(heat)) if np.isfinite(heat).any() else 1, 1e-9),
                        extent=(-0.5, size - 0.5, size - 0.5, -0.5))
    for (row, col), colour in np.ndenumerate(colours):
        if colour:
            axes.add_patch(Circle((col, row), 0.46, zorder=3, linewidth=0.8,
                                      facecolor="black" if colour == BLACK else "white",
                                      edgecolor="black"))
    if played is not None:
        row, col = played
        axes.add_patch(Circle((col, row), 0.5, zorder=4, fill=False, edgecolor="red",
                                  linewidth=2.5))
    axes.set_xlim(-0.8, size - 0.2)
    axes.set_ylim(size - 0.2, -0.8)
    axes.set_xticks(range(size), list(COLUMNS[:size]))
    axes.set_yticks(range(size), [str(size - r) for r in range(size)])
    axes.set_aspect("equal")
    axes.set_title(title, fontsize=10)
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04, label="probability")
    return figure


def show_command(args) -> int:
    """Read the SGF, replay to the move, ask the policy, draw, write the PNG."""
    from cnnlab.apps.go.evaluate import load_policy
    from cnnlab.apps.go.gtp import vertex_of_point
    from cnnlab.apps.go.sgf_read import ReadReport, read_games
    from cnnlab.plots import save_figure

    report = ReadReport()
    games = list(read_games([args.sgf], report))
    if not games:
        if report.examples:
            raise CnnlabError("no usable game: " + "; ".join(report.examples.values()))
        raise CnnlabError(f"{args.sgf}: no game in it")
    game = games[0]
    if not game.moves:
        raise CnnlabError(f"{args.sgf}: the game has no moves")
    move = len(game.moves) // 2 + 1 if args.move is None else args.move
    board = board_before(game, move)
    policy = load_policy(args.model)
    probabilities = policy.probabilities(board)
    colour, played = game.moves[move - 1]
    best = int(np.argmax(np.where(board.colours().ravel() == 0, probabilities, -1)))
    played_text = "pass" if played is None else (
        f"{vertex_of_point(played[0] * board.size + played[1], board.size)} "
        f"(p = {probabilities[played[0] * board.size + played[1]]:.3f})")
    title = (f"{game.source.split('/')[-1]}: move {move}, {'black' if colour == 'b' else 'white'}"
             f" to play\nplayed {played_text}; the network's first choice "
             f"{vertex_of_point(best, board.size)} (p = {probabilities[best]:.3f})")
    path = save_figure(draw(board, probabilities, played, title), args.out)
    print(f"{path}: move {move} of {len(game.moves)}; played {played_text}, first choice "
          f"{vertex_of_point(best, board.size)} (p = {probabilities[best]:.3f})")
    return 0
