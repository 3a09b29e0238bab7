use testkit::ServiceEnv;

#[test]
fn config_needs_exactly_the_variables_listed_as_required() {
    ServiceEnv::of("client").assert_config_needs_exactly_these(client::Config::from_env);
}
