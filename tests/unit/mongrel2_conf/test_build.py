"""Building model objects from a parsed config: filter settings, and how problems name things."""

from __future__ import annotations

import pytest

from mongrel2_conf import Config, ConfigError, parse_config
from mongrel2_conf.check import describe_node
from mongrel2_conf.errors import Position
from mongrel2_conf.shape import label, problem_at
from mongrel2_conf.tree import Ref

SERVER = (
    'main = Server(uuid="u1" access_log="/a" error_log="/e" pid_file="/p" default_host="localhost"'
    ' name="main" port=6767 hosts=[Host(name="localhost" routes={"/": Dir(base="s/"'
    ' index_file="index.html" default_ctype="text/plain")})] filters=[f])\nservers = [main]\n'
)


def config_with_filter(settings_lines: str) -> Config:
    return parse_config(settings_lines + SERVER, "f.conf")


def only_problem(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        config_with_filter(text)
    (problem,) = caught.value.problems
    return problem


def test_filter_settings_that_name_themselves_nest_too_deep():
    problem = only_problem('loop = {"again": loop}\nf = Filter(name="/x.so" settings=loop)\n')
    assert problem.message == "filter settings nest too deep (a name that refers to itself?)"
    assert (problem.file, problem.line, problem.column) == ("f.conf", 1, 18)


def test_filter_settings_keep_the_largest_number_the_language_has():
    config = config_with_filter('f = Filter(name="/x.so" settings={"n": 999999999999999999})\n')
    assert config.servers[0].filters[0].settings == {"n": 10**18 - 1}


def test_a_filter_setting_too_large_for_a_signed_64_bit_long_is_refused_while_reading():
    problem = only_problem('f = Filter(name="/x.so" settings={"n": 9223372036854775808})\n')
    assert problem.message == "number longer than 18 digits"
    assert (problem.line, problem.column) == (1, 40)


def test_describe_node_names_a_name_by_its_name():
    assert describe_node(Ref("static", Position("f.conf", 1, 1))) == "name 'static'"


def test_an_object_that_is_not_a_config_class_is_labelled_by_its_type():
    assert label(Config(servers=[])) == "Config"
    assert str(problem_at("something is wrong", Config(servers=[]))) == "Config: something is wrong"
