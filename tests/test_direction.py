"""One direction type (nn.scopes.TimeDirection) owns a layer-direction's parameter suffix, scope letter,
report name and index; `manual` (numpy only, so it cannot import it) agrees with it on every one."""

import pytest

from tinygrad_rnn import nn
from tinygrad_rnn.manual.layout import parse_key, stream_name
from tinygrad_rnn.nn.scopes import DIRECTIONS, TimeDirection, layer_scope, parse_step_scope, step_scope


@pytest.mark.parametrize("way", DIRECTIONS)
@pytest.mark.parametrize("layer", [0, 3])
def test_manual_names_and_indexes_a_layer_direction_as_the_direction_type(
    way: TimeDirection, layer: int
) -> None:
    assert stream_name(layer, int(way)) == way.stream(layer)
    assert parse_key(f"weight_ih{way.suffix(layer)}", cells=False) == ("weight_ih", layer, way)
    assert parse_key(f"cell{way.suffix(layer)}.peep", cells=True) == ("peep", layer, way)
    step = parse_step_scope(step_scope(layer_scope("lstm", layer, way), 2))
    assert step is not None and (step.layer, step.direction, step.t) == (layer, way, 2)


def test_a_bidirectional_layer_names_its_parameters_and_cells_by_the_direction_type() -> None:
    lstm = nn.LSTM(2, 3, num_layers=2, bidirectional=True)
    expected = {
        f"{name}{way.suffix(k)}"
        for k in range(2)
        for way in DIRECTIONS
        for name in ("weight_ih", "weight_hh")
    }
    assert expected <= {name for name, _ in lstm.named_parameters()}
    layer = nn.Recurrent(nn.GRUCell, 2, 3, bidirectional=True)
    assert layer.cell_at(0, TimeDirection.REVERSE) is layer.cell_l0_reverse
    assert list(TimeDirection.REVERSE.order(3)) == [2, 1, 0] and list(TimeDirection.FORWARD.order(3)) == [
        0,
        1,
        2,
    ]
