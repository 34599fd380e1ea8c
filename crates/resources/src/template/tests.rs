//! Tests of the template engine: the expression parser, every function, parameters, variables,
//! copy loops, dependency ordering, conditions, and whole deployments of the fixtures in
//! `testdata/` (the seeds' identity block, an identity with a VM and a role assignment, and the
//! templates `az vm create` generates) against a fake resolver that plays the server.

use std::cell::RefCell;
use std::collections::HashMap;

use domain::{ResourceId, UnixTime};
use expect_test::{Expect, expect};
use serde_json::{Map, Value, json};

use crate::template::eval::{self, Scope, Site};
use crate::template::{
    CloudEnvironment, DeploymentContext, Prepared, ReferenceResolver, ResourceGroupContext,
    Template, TemplateError, expression, hash,
};

const SUBSCRIPTION: &str = "11111111-1111-1111-1111-111111111111";
const GROUP_ID: &str = "/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg1";

fn context() -> DeploymentContext {
    DeploymentContext {
        tenant_id: "22222222-2222-2222-2222-222222222222".to_owned(),
        subscription_id: SUBSCRIPTION.to_owned(),
        subscription_display_name: "Ambient".to_owned(),
        resource_group: Some(ResourceGroupContext {
            id: ResourceId::parse(GROUP_ID).unwrap(),
            location: "westeurope".to_owned(),
            tags: json!({"env": "test"}).as_object().unwrap().clone(),
        }),
        deployment_name: "deploy1".to_owned(),
        location: None,
        // 2024-05-01T12:34:56.789Z
        now: UnixTime::from_millis(1_714_566_896_789),
        environment: CloudEnvironment {
            name: "Ambient".to_owned(),
            resource_manager: "https://localhost:8443/".to_owned(),
            login_endpoint: "https://localhost:8443/".to_owned(),
            graph: "https://localhost:8443/graph/".to_owned(),
            key_vault_dns: ".vault.localhost".to_owned(),
            storage: "storage.localhost".to_owned(),
        },
    }
}

fn subscription_context() -> DeploymentContext {
    DeploymentContext { resource_group: None, location: Some("westeurope".to_owned()), ..context() }
}

/// Plays the server: stores what each PUT asks for and renders it back the way ARM's GET
/// would, with principals for identities.
#[derive(Default)]
struct FakeArm {
    resources: RefCell<HashMap<String, Value>>,
}

impl ReferenceResolver for FakeArm {
    fn resource(&self, id: &ResourceId) -> Option<Value> {
        self.resources.borrow().get(id.key()).cloned()
    }

    /// Serves `listKeys` on storage accounts that exist, as a server could.
    fn list(&self, id: &ResourceId, action: &str, _input: &Value) -> Option<Value> {
        let storage = id.resource_type()?.eq_ignore_ascii_case("Microsoft.Storage/storageAccounts");
        (storage && action.eq_ignore_ascii_case("listKeys") && self.resource(id).is_some()).then(
            || {
                let key = format!("key-of-{}", id.name().unwrap_or_default());
                json!({"keys": [{"keyName": "key1", "value": key}]})
            },
        )
    }
}

impl FakeArm {
    fn put(&self, id: &ResourceId, resource_type: &str, body: &Value) {
        let mut stored = Map::new();
        stored.insert("id".to_owned(), json!(id.as_str()));
        stored.insert("name".to_owned(), json!(id.name().unwrap_or_default()));
        stored.insert("type".to_owned(), json!(resource_type));
        for (key, value) in body.as_object().unwrap() {
            stored.insert(key.clone(), value.clone());
        }
        let principal = hash::guid(&[id.as_str(), "principal"]);
        let mut properties =
            stored.get("properties").and_then(Value::as_object).cloned().unwrap_or_default();
        properties.insert("provisioningState".to_owned(), json!("Succeeded"));
        if resource_type.eq_ignore_ascii_case("Microsoft.ManagedIdentity/userAssignedIdentities") {
            properties.insert("tenantId".to_owned(), json!("22222222-2222-2222-2222-222222222222"));
            properties.insert("principalId".to_owned(), json!(principal));
            properties.insert("clientId".to_owned(), json!(hash::guid(&[id.as_str(), "client"])));
        }
        stored.insert("properties".to_owned(), Value::Object(properties));
        if let Some(Value::Object(identity)) = stored.get_mut("identity") {
            let kind = identity.get("type").and_then(Value::as_str).unwrap_or_default().to_owned();
            if kind.contains("SystemAssigned") {
                identity.insert("principalId".to_owned(), json!(principal));
                identity
                    .insert("tenantId".to_owned(), json!("22222222-2222-2222-2222-222222222222"));
            }
        }
        self.resources.borrow_mut().insert(id.key().to_owned(), Value::Object(stored));
    }
}

fn render_error(error: &TemplateError) -> String {
    format!("error {}: {}\n  at: {}", error.code(), error.message(), error.path().unwrap_or("-"))
}

fn parse_json(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

/// A small template whose parameters and variables the expression tests read.
const EXPRESSION_TEMPLATE: &str = r#"{
    "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
    "contentVersion": "1.0.0.0",
    "parameters": {
        "name": {"type": "string", "defaultValue": "Web-App"},
        "count": {"type": "int", "defaultValue": 3},
        "flag": {"type": "bool", "defaultValue": true},
        "tags": {"type": "object", "defaultValue": {"team": "ops", "Cost": "12"}},
        "zones": {"type": "array", "defaultValue": ["1", "2", "3"]},
        "secret": {"type": "securestring", "defaultValue": "hunter2"}
    },
    "variables": {
        "prefix": "[toLower(parameters('name'))]",
        "settings": {"size": "small", "nested": {"depth": 2}, "list": [10, 20, 30]}
    },
    "resources": [
        {"type": "Microsoft.ManagedIdentity/userAssignedIdentities", "apiVersion": "2023-01-31", "name": "id1", "location": "westeurope"},
        {"type": "Microsoft.Compute/virtualMachines", "apiVersion": "2024-03-01", "name": "[concat('vm', copyIndex())]", "copy": {"name": "vms", "count": 2}, "location": "westeurope", "identity": {"type": "SystemAssigned"}}
    ]
}"#;

/// Evaluates one expression (the text of a template string) in a resource body of the
/// expression template, with `id1` deployed, inside iteration 1 of a copy loop `vms`.
#[track_caller]
fn check_expr(text: &str, expect: Expect) {
    let template = Template::parse(&parse_json(EXPRESSION_TEMPLATE)).unwrap();
    let prepared = template.prepare(&Value::Null, &context()).unwrap();
    let arm = FakeArm::default();
    let identity = &prepared.resources()[0];
    arm.put(identity.id(), identity.resource_type(), &prepared.evaluate(0, &arm).unwrap().body);
    let value = Value::String(text.to_owned());
    let node = crate::template::node::compile(&value, "test");
    let actual = match node {
        Err((message, _)) => format!("parse error: {message}"),
        Ok(node) => {
            let mut scope =
                Scope::new(&prepared, Site::Body, prepared.resources()[2].loops.clone());
            scope.resolver = Some(&arm);
            match eval::node(&node, &scope, "test") {
                Ok(value) => serde_json::to_string(&value).unwrap(),
                Err(located) => {
                    format!("error {}: {}", located.fault.code(), located.fault.message())
                }
            }
        }
    };
    expect.assert_eq(&actual);
}

#[track_caller]
fn check_parse(text: &str, expect: Expect) {
    let actual = match expression::parse(text) {
        Ok(expr) => format!("{expr:?}"),
        Err(message) => format!("error: {message}"),
    };
    expect.assert_eq(&actual);
}

/// Prepares a template and lists the resources in deployment order with what they wait for.
#[track_caller]
fn check_prepare(template: &str, parameters: Value, expect: Expect) {
    check_prepare_in(template, parameters, &context(), expect);
}

#[track_caller]
fn check_prepare_in(
    template: &str,
    parameters: Value,
    context: &DeploymentContext,
    expect: Expect,
) {
    let actual = match Template::parse(&parse_json(template))
        .and_then(|t| t.prepare(&parameters, context))
    {
        Err(error) => render_error(&error),
        Ok(prepared) => render_order(&prepared),
    };
    expect.assert_eq(&actual);
}

fn render_order(prepared: &Prepared) -> String {
    let mut out = String::new();
    for resource in prepared.resources() {
        out.push_str(&format!(
            "{} {} ({})\n",
            resource.resource_type(),
            resource.name(),
            resource.api_version()
        ));
        out.push_str(&format!("  id: {}\n", resource.id()));
        for dependency in resource.depends_on() {
            out.push_str(&format!("  after: {}\n", dependency.name().unwrap_or_default()));
        }
        for read in resource.references() {
            out.push_str(&format!("  reads: {read}\n"));
        }
    }
    for read in prepared.output_references() {
        out.push_str(&format!("outputs read: {read}\n"));
    }
    out
}

/// Deploys a template against the fake ARM, resource by resource, and prints each PUT and the
/// outputs (or the first error).
#[track_caller]
fn check_deploy(template: &str, parameters: Value, expect: Expect) {
    expect.assert_eq(&deploy(template, parameters, &context(), &FakeArm::default()));
}

fn deploy(template: &str, parameters: Value, context: &DeploymentContext, arm: &FakeArm) -> String {
    let prepared = match Template::parse(&parse_json(template))
        .and_then(|t| t.prepare(&parameters, context))
    {
        Ok(prepared) => prepared,
        Err(error) => return render_error(&error),
    };
    let mut out = String::new();
    for index in 0..prepared.resources().len() {
        match prepared.evaluate(index, arm) {
            Ok(request) => {
                out.push_str(&format!(
                    "PUT {} ({} @ {})\n{}\n",
                    request.id,
                    request.resource_type,
                    request.api_version,
                    serde_json::to_string_pretty(&request.body).unwrap()
                ));
                arm.put(&request.id, &request.resource_type, &request.body);
            }
            Err(error) => {
                out.push_str(&render_error(&error));
                return out;
            }
        }
    }
    match prepared.outputs(arm) {
        Ok(outputs) => {
            out.push_str(&format!("outputs {}", serde_json::to_string_pretty(&outputs).unwrap()))
        }
        Err(error) => out.push_str(&render_error(&error)),
    }
    out
}

fn fixture(name: &str) -> &'static str {
    match name {
        "identity-vm-role" => include_str!("testdata/identity-vm-role.json"),
        "seed-identity-block" => include_str!("testdata/seed-identity-block.json"),
        "az-vm-create" => include_str!("testdata/az-vm-create.json"),
        "az-vm-create-count" => include_str!("testdata/az-vm-create-count.json"),
        other => panic!("no fixture {other}"),
    }
}

// Expression syntax.

#[test]
fn strings_are_expressions_only_inside_brackets() {
    let classify = |text: &str| format!("{:?}", expression::classify(text));
    expect![[r#"Expression("concat('a')")"#]].assert_eq(&classify("[concat('a')]"));
    expect![[r#"Literal("[not an expression]")"#]].assert_eq(&classify("[[not an expression]"));
    expect![[r#"Literal("[starts only")"#]].assert_eq(&classify("[starts only"));
    expect![[r#"Literal("plain")"#]].assert_eq(&classify("plain"));
}

#[test]
fn parses_calls_properties_and_indexes() {
    check_parse(
        "reference(resourceId('Microsoft.Web/sites', 'app'), '2022-03-01', 'Full').identity.principalId",
        expect![[
            r#"Property { target: Property { target: Call { name: "reference", args: [Call { name: "resourceId", args: [String("Microsoft.Web/sites"), String("app")] }, String("2022-03-01"), String("Full")] }, name: "identity" }, name: "principalId" }"#
        ]],
    );
    check_parse(
        "variables('list')[add(1, -2)]['key']",
        expect![[
            r#"Index { target: Index { target: Call { name: "variables", args: [String("list")] }, index: Call { name: "add", args: [Integer(1), Integer(-2)] } }, index: String("key") }"#
        ]],
    );
}

#[test]
fn quotes_are_escaped_by_doubling() {
    check_parse(
        "concat('it''s', '')",
        expect![[r#"Call { name: "concat", args: [String("it's"), String("")] }"#]],
    );
    check_parse(
        "if(true, null, False())",
        expect![[
            r#"Call { name: "if", args: [Call { name: "true", args: [] }, Call { name: "null", args: [] }, Call { name: "False", args: [] }] }"#
        ]],
    );
}

#[test]
fn syntax_errors_name_the_expression() {
    check_parse(
        "concat('a', 'b'",
        expect![[
            r#"error: Unable to parse language expression 'concat('a', 'b'': expected token 'RightParenthesis' and actual 'EndOfData'."#
        ]],
    );
    check_parse(
        "concat('a)",
        expect![[
            r#"error: Unable to parse language expression 'concat('a)': the string literal is not terminated"#
        ]],
    );
    check_parse(
        "parameters('a') + 1",
        expect![[
            r#"error: Unable to parse language expression 'parameters('a') + 1': the character '+' at position '16' is not expected"#
        ]],
    );
    check_parse(
        "'a'.b.",
        expect![[
            r#"error: Unable to parse language expression ''a'.b.': expected token 'Identifier' and actual 'EndOfData'."#
        ]],
    );
}

#[test]
fn unknown_functions_are_reported_with_their_place() {
    check_prepare(
        r#"{"resources": [{"type": "Microsoft.Web/sites", "apiVersion": "2022-03-01", "name": "app",
            "properties": {"siteConfig": {"x": "[concat('a', frobnicate(1))]"}}}]}"#,
        Value::Null,
        expect![[r#"
            error InvalidTemplate: Deployment template validation failed: 'The template resource 'app' at 'resources[0]' is not valid: The template function 'frobnicate' is not valid. Please see https://aka.ms/arm-functions for usage details.'.
              at: resources[0].properties.siteConfig.x"#]],
    );
}

// Functions.

#[test]
fn parameters_and_variables() {
    check_expr("[parameters('name')]", expect![[r#""Web-App""#]]);
    check_expr("[parameters('NAME')]", expect![[r#""Web-App""#]]);
    check_expr("[variables('prefix')]", expect![[r#""web-app""#]]);
    check_expr("[variables('settings').nested.depth]", expect![[r#"2"#]]);
    check_expr("[variables('settings').list[1]]", expect![[r#"20"#]]);
    check_expr("[parameters('tags')['cost']]", expect![[r#""12""#]]);
    check_expr(
        "[parameters('missing')]",
        expect![[
            r#"error InvalidTemplate: The template parameter 'missing' is not found. Please see https://aka.ms/arm-syntax-parameters for usage details."#
        ]],
    );
    check_expr(
        "[variables('missing')]",
        expect![[
            r#"error InvalidTemplate: The template variable 'missing' is not found. Please see https://aka.ms/arm-syntax-variables for usage details."#
        ]],
    );
    check_expr(
        "[variables('settings').colour]",
        expect![[
            r#"error InvalidTemplate: The language expression property 'colour' doesn't exist, available properties are 'size, nested, list'."#
        ]],
    );
    check_expr(
        "[variables('settings').list[3]]",
        expect![[
            r#"error InvalidTemplate: The language expression property array index '3' is out of bounds."#
        ]],
    );
}

#[test]
fn literal_escapes_and_expression_keys() {
    check_expr("[[parameters('name')]", expect![[r#""[parameters('name')]""#]]);
    let template = Template::parse(&parse_json(EXPRESSION_TEMPLATE)).unwrap();
    let prepared = template.prepare(&Value::Null, &context()).unwrap();
    let node = crate::template::node::compile(
        &json!({"[concat('key-', parameters('name'))]": "[parameters('count')]", "plain": "[[x]"}),
        "test",
    )
    .unwrap();
    let value = eval::node(&node, &Scope::new(&prepared, Site::Body, Vec::new()), "test").unwrap();
    expect![[r#"{"key-Web-App":3,"plain":"[x]"}"#]].assert_eq(&value.to_string());
}

#[test]
fn string_functions() {
    check_expr("[concat('a', 1, true, 'b')]", expect![[r#""a1Trueb""#]]);
    check_expr("[concat(createArray(1, 2), createArray(3))]", expect![[r#"[1,2,3]"#]]);
    check_expr(
        "[concat('a', createArray(1))]",
        expect![[
            r#"error InvalidTemplate: Unable to evaluate template language function 'concat': Either all or none of the parameters must be an array. Please see https://aka.ms/arm-functions for usage details."#
        ]],
    );
    check_expr("[format('{0}-{1:D3}-{{x}}-{2}', 'a', 7, true)]", expect![[r#""a-007-{x}-True""#]]);
    check_expr("[format('[{0,5}|{0,-5}]', 'ab')]", expect![[r#""[   ab|ab   ]""#]]);
    check_expr(
        "[format('{0:N0} {1:X} {2:000}', 1234567, 255, 42)]",
        expect![[r#""1,234,567 FF 042""#]],
    );
    check_expr("[format('{0}', createObject('a', 'b'))]", expect![[r#""{'a':'b'}""#]]);
    check_expr(
        "[format('{1}', 'a')]",
        expect![[
            r#"error InvalidTemplate: Unable to evaluate template language function 'format': Index (zero based) must be greater than or equal to zero and less than the size of the argument list. Please see https://aka.ms/arm-functions for usage details."#
        ]],
    );
    check_expr("[toLower('AbC')]", expect![[r#""abc""#]]);
    check_expr("[toUpper('AbC')]", expect![[r#""ABC""#]]);
    check_expr(
        "[toUpper(1)]",
        expect![[
            r#"error InvalidTemplate: The template language function 'toUpper' expects its parameter 1 to be of type 'String'. The provided value is of type 'Integer'. Please see https://aka.ms/arm-functions for usage details."#
        ]],
    );
    check_expr("[split('a,b;c', createArray(',', ';'))]", expect![[r#"["a","b","c"]"#]]);
    check_expr("[split('a--b', '-')]", expect![[r#"["a","","b"]"#]]);
    check_expr("[replace('a-b-c', '-', '')]", expect![[r#""abc""#]]);
    check_expr("[replace('aAa', 'a', 'x')]", expect![[r#""xAx""#]]);
    check_expr("[substring('hello', 1, 3)]", expect![[r#""ell""#]]);
    check_expr("[substring('hello', 2)]", expect![[r#""llo""#]]);
    check_expr(
        "[substring('hello', 2, 10)]",
        expect![[
            r#"error InvalidTemplate: Unable to evaluate template language function 'substring': The index and length parameters must refer to a location within the string. The index parameter: '2', the length parameter: '10', the length of the string parameter: '5'. Please see https://aka.ms/arm-functions for usage details."#
        ]],
    );
    check_expr(
        "[substring('hello')]",
        expect![[
            r#"error InvalidTemplate: Unable to evaluate template language function 'substring': function requires 2 or 3 argument(s) while 1 were provided. Please see https://aka.ms/arm-functions for usage details."#
        ]],
    );
    check_expr("[startsWith('Microsoft.Web', 'microsoft')]", expect![[r#"true"#]]);
    check_expr("[endsWith('Microsoft.Web', 'WEB')]", expect![[r#"true"#]]);
    check_expr("[endsWith('Microsoft.Web', 'Compute')]", expect![[r#"false"#]]);
    check_expr("[trim('  x y  ')]", expect![[r#""x y""#]]);
    check_expr("[padLeft(7, 3, '0')]", expect![[r#""007""#]]);
    check_expr(
        "[string(createObject('a', createArray(1, 'b')))]",
        expect![[r#""{\"a\":[1,\"b\"]}""#]],
    );
    check_expr("[string(false)]", expect![[r#""False""#]]);
    check_expr("[base64('hello')]", expect![[r#""aGVsbG8=""#]]);
    check_expr("[base64ToString('aGVsbG8=')]", expect![[r#""hello""#]]);
    check_expr("[uriComponent('a b/c')]", expect![[r#""a%20b%2Fc""#]]);
    check_expr("[uriComponentToString('a%20b%2Fc')]", expect![[r#""a b/c""#]]);
    check_expr("[indexOf('abcABC', 'C')]", expect![[r#"2"#]]);
    check_expr("[lastIndexOf('abcABC', 'c')]", expect![[r#"5"#]]);
    check_expr("[join(createArray('a', 1, true), '/')]", expect![[r#""a/1/True""#]]);
}

#[test]
fn collection_functions() {
    check_expr("[length('abc')]", expect![[r#"3"#]]);
    check_expr("[length(parameters('zones'))]", expect![[r#"3"#]]);
    check_expr("[length(parameters('tags'))]", expect![[r#"2"#]]);
    check_expr("[empty('')]", expect![[r#"true"#]]);
    check_expr("[empty(createObject())]", expect![[r#"true"#]]);
    check_expr("[empty(parameters('zones'))]", expect![[r#"false"#]]);
    check_expr("[contains(parameters('zones'), '2')]", expect![[r#"true"#]]);
    check_expr("[contains(parameters('zones'), 2)]", expect![[r#"false"#]]);
    check_expr("[contains(parameters('tags'), 'TEAM')]", expect![[r#"true"#]]);
    check_expr("[contains('Hello', 'hello')]", expect![[r#"false"#]]);
    check_expr("[first(parameters('zones'))]", expect![[r#""1""#]]);
    check_expr("[last('abc')]", expect![[r#""c""#]]);
    check_expr("[first(createArray())]", expect![[r#"null"#]]);
    check_expr("[union(createArray(1, 2), createArray(2, 3))]", expect![[r#"[1,2,3]"#]]);
    check_expr(
        "[union(createObject('a', 1, 'n', createObject('x', 1)), createObject('b', 2, 'n', createObject('y', 2)))]",
        expect![[r#"{"a":1,"n":{"x":1,"y":2},"b":2}"#]],
    );
    check_expr("[intersection(createArray(1, 2, 3), createArray(3, 2))]", expect![[r#"[2,3]"#]]);
    check_expr("[createObject('b', 1, 'a', createArray())]", expect![[r#"{"b":1,"a":[]}"#]]);
    check_expr(
        "[createObject('a')]",
        expect![[
            r#"error InvalidTemplate: Unable to evaluate template language function 'createObject': function requires an even number of arguments (property names and values). Please see https://aka.ms/arm-functions for usage details."#
        ]],
    );
    check_expr("[take(parameters('zones'), 2)]", expect![[r#"["1","2"]"#]]);
    check_expr("[skip('abcdef', 4)]", expect![[r#""ef""#]]);
    check_expr("[range(5, 3)]", expect![[r#"[5,6,7]"#]]);
    check_expr("[min(createArray(4, 2, 9))]", expect![[r#"2"#]]);
    check_expr("[max(4, 2, 9)]", expect![[r#"9"#]]);
    check_expr("[array('x')]", expect![[r#"["x"]"#]]);
    check_expr(
        "[items(createObject('b', 2, 'a', 1))]",
        expect![[r#"[{"key":"a","value":1},{"key":"b","value":2}]"#]],
    );
    check_expr("[tryGet(parameters('tags'), 'missing')]", expect![[r#"null"#]]);
    check_expr("[tryGet(variables('settings'), 'nested', 'depth')]", expect![[r#"2"#]]);
    check_expr("[coalesce(null(), json('null'), 'x', 'y')]", expect![[r#""x""#]]);
    check_expr("[json('{\"a\": [1, true]}').a[1]]", expect![[r#"true"#]]);
}

#[test]
fn logic_comparison_and_numbers() {
    check_expr("[equals(1, 1)]", expect![[r#"true"#]]);
    check_expr("[equals('a', 'A')]", expect![[r#"false"#]]);
    check_expr(
        "[equals(createObject('a', createArray(1)), json('{\"a\":[1]}'))]",
        expect![[r#"true"#]],
    );
    check_expr("[not(parameters('flag'))]", expect![[r#"false"#]]);
    check_expr("[and(true, parameters('flag'), not(false))]", expect!["true"]);
    check_expr("[or(false, false)]", expect!["false"]);
    check_expr(
        "[and(true, 'yes')]",
        expect![
            "error InvalidTemplate: The template language function 'and' expects its parameter 2 to be of type 'Boolean'. The provided value is of type 'String'. Please see https://aka.ms/arm-functions for usage details."
        ],
    );
    check_expr("[if(parameters('flag'), 'on', 'off')]", expect![[r#""on""#]]);
    // Only the branch taken is evaluated.
    check_expr("[if(false, parameters('missing'), 'safe')]", expect![[r#""safe""#]]);
    check_expr("[greater(3, 2)]", expect![[r#"true"#]]);
    check_expr("[less('a', 'b')]", expect![[r#"true"#]]);
    check_expr("[greaterOrEquals(2, 2)]", expect![[r#"true"#]]);
    check_expr("[lessOrEquals(3, 2)]", expect![[r#"false"#]]);
    check_expr(
        "[less(1, 'b')]",
        expect![[
            r#"error InvalidTemplate: The template language function 'less' expects its parameter 2 to be of type 'Integer'. The provided value is of type 'String'. Please see https://aka.ms/arm-functions for usage details."#
        ]],
    );
    check_expr("[add(parameters('count'), 4)]", expect![[r#"7"#]]);
    check_expr("[sub(1, 4)]", expect![[r#"-3"#]]);
    check_expr("[mul(6, 7)]", expect![[r#"42"#]]);
    check_expr("[div(7, 2)]", expect![[r#"3"#]]);
    check_expr("[mod(7, 2)]", expect![[r#"1"#]]);
    check_expr(
        "[div(1, 0)]",
        expect![[
            r#"error InvalidTemplate: Unable to evaluate template language function 'div': Attempted to divide by zero. Please see https://aka.ms/arm-functions for usage details."#
        ]],
    );
    check_expr(
        "[mul(9223372036854775807, 2)]",
        expect![[
            r#"error InvalidTemplate: Unable to evaluate template language function 'mul': the result overflows a 64-bit integer. Please see https://aka.ms/arm-functions for usage details."#
        ]],
    );
    check_expr("[int('42')]", expect![[r#"42"#]]);
    check_expr("[bool('TRUE')]", expect![[r#"true"#]]);
    check_expr("[bool(0)]", expect![[r#"false"#]]);
    check_expr("[createArray(true(), false(), null())]", expect![[r#"[true,false,null]"#]]);
}

#[test]
fn resource_id_functions() {
    check_expr(
        "[resourceId('Microsoft.ManagedIdentity/userAssignedIdentities', 'id1')]",
        expect![[
            r#""/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg1/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id1""#
        ]],
    );
    check_expr(
        "[resourceId('Microsoft.Network/virtualNetworks/subnets', 'vnet', 'default')]",
        expect![[
            r#""/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg1/providers/Microsoft.Network/virtualNetworks/vnet/subnets/default""#
        ]],
    );
    check_expr(
        "[resourceId('other-rg', 'Microsoft.Storage/storageAccounts', 'store')]",
        expect![[
            r#""/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/other-rg/providers/Microsoft.Storage/storageAccounts/store""#
        ]],
    );
    check_expr(
        "[resourceId('33333333-3333-3333-3333-333333333333', 'other-rg', 'Microsoft.Storage/storageAccounts', 'store')]",
        expect![[
            r#""/subscriptions/33333333-3333-3333-3333-333333333333/resourceGroups/other-rg/providers/Microsoft.Storage/storageAccounts/store""#
        ]],
    );
    check_expr(
        "[resourceId('Microsoft.Network/virtualNetworks/subnets', 'vnet')]",
        expect![[
            r#"error InvalidTemplate: Unable to evaluate template language function 'resourceId': the type 'Microsoft.Network/virtualNetworks/subnets' requires '2' resource name argument(s). Please see https://aka.ms/arm-functions for usage details."#
        ]],
    );
    check_expr(
        "[resourceId('vnet', 'default')]",
        expect![[
            r#"error InvalidTemplate: Unable to evaluate template language function 'resourceId': function requires exactly one multi-segmented argument which must be resource type including resource provider namespace. Current function arguments 'vnet,default'. Please see https://aka.ms/arm-functions for usage details."#
        ]],
    );
    check_expr(
        "[subscriptionResourceId('Microsoft.Authorization/roleDefinitions', 'acdd72a7-3385-48ef-bd42-f606fba81ae7')]",
        expect![[
            r#""/subscriptions/11111111-1111-1111-1111-111111111111/providers/Microsoft.Authorization/roleDefinitions/acdd72a7-3385-48ef-bd42-f606fba81ae7""#
        ]],
    );
    check_expr(
        "[tenantResourceId('Microsoft.Management/managementGroups', 'mg1')]",
        expect![[r#""/providers/Microsoft.Management/managementGroups/mg1""#]],
    );
    check_expr(
        "[extensionResourceId(resourceId('Microsoft.KeyVault/vaults', 'kv'), 'Microsoft.Authorization/roleAssignments', 'a')]",
        expect![[
            r#""/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg1/providers/Microsoft.KeyVault/vaults/kv/providers/Microsoft.Authorization/roleAssignments/a""#
        ]],
    );
}

#[test]
fn deployment_context_functions() {
    check_expr(
        "[resourceGroup()]",
        expect![[
            r#"{"id":"/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg1","name":"rg1","type":"Microsoft.Resources/resourceGroups","location":"westeurope","tags":{"env":"test"},"properties":{"provisioningState":"Succeeded"}}"#
        ]],
    );
    check_expr(
        "[subscription()]",
        expect![[
            r#"{"id":"/subscriptions/11111111-1111-1111-1111-111111111111","subscriptionId":"11111111-1111-1111-1111-111111111111","tenantId":"22222222-2222-2222-2222-222222222222","displayName":"Ambient"}"#
        ]],
    );
    check_expr("[deployment().name]", expect![[r#""deploy1""#]]);
    check_expr(
        "[deployment().properties.template]",
        expect![[
            r#"{"$schema":"https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#","contentVersion":"1.0.0.0"}"#
        ]],
    );
    check_expr("[environment().suffixes.keyvaultDns]", expect![[r#"".vault.localhost""#]]);
    check_expr(
        "[environment().authentication.loginEndpoint]",
        expect![[r#""https://localhost:8443/""#]],
    );
    check_expr("[tenant().tenantId]", expect![[r#""22222222-2222-2222-2222-222222222222""#]]);
    check_expr(
        "[providers('Microsoft.Compute', 'virtualMachines').apiVersions[0]]",
        expect![[r#""2024-03-01""#]],
    );
    check_expr(
        "[utcNow()]",
        expect![[
            r#"error InvalidTemplate: The template function 'utcNow' is not expected at this location. It can only be used in the default value of a parameter. Please see https://aka.ms/arm-template-expressions for usage details."#
        ]],
    );
    check_expr(
        "[listKeys(resourceId('Microsoft.Storage/storageAccounts', 's'), '2023-01-01')]",
        expect![
            "error InvalidTemplate: The template function 'listKeys' is not supported by Ambient for the resource '/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg1/providers/Microsoft.Storage/storageAccounts/s'."
        ],
    );
}

#[test]
fn copy_index_in_a_resource_loop() {
    check_expr("[copyIndex()]", expect![[r#"1"#]]);
    check_expr("[copyIndex(10)]", expect![[r#"11"#]]);
    check_expr("[copyIndex('vms', 1)]", expect![[r#"2"#]]);
    check_expr(
        "[copyIndex('disks')]",
        expect![[
            r#"error InvalidTemplate: The template function 'copyIndex' is not expected at this location: there is no copy loop named 'disks' here. Please see https://aka.ms/arm-copy for usage details."#
        ]],
    );
}

#[test]
fn reference_reads_deployed_resources() {
    check_expr(
        "[reference(resourceId('Microsoft.ManagedIdentity/userAssignedIdentities', 'id1')).principalId]",
        expect![[r#""b1ab67b3-1bd2-5f3d-9de5-679c01c1f35d""#]],
    );
    check_expr(
        "[reference('id1', '2023-01-31').tenantId]",
        expect![[r#""22222222-2222-2222-2222-222222222222""#]],
    );
    check_expr(
        "[reference(resourceId('Microsoft.ManagedIdentity/userAssignedIdentities', 'id1'), '2023-01-31', 'Full').location]",
        expect![[r#""westeurope""#]],
    );
    check_expr(
        "[reference(resourceId('Microsoft.Compute/virtualMachines', 'vm0')).provisioningState]",
        expect![[
            r#"error ResourceNotFound: The Resource 'Microsoft.Compute/virtualMachines/vm0' under resource group 'rg1' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix"#
        ]],
    );
    check_expr(
        "[reference('nothing')]",
        expect![[
            r#"error InvalidTemplate: The template reference 'nothing' is not valid: could not find template resource or resource copy with this name. Please see https://aka.ms/arm-function-reference for usage details."#
        ]],
    );
}

#[test]
fn unique_string_matches_azure() {
    // Vectors a public port checks against Bicep's uniqueString().
    let cases: &[(&[&str], &str)] = &[
        (&["test"], "rbgf3xv4ufgzg"),
        (&["hello", "world"], "a7wkljktk6wne"),
        (&["abc"], "cgtzqvhu4i23s"),
        (
            &["/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/my-rg"],
            "bmg7c6xu4tw46",
        ),
        (&["foo", "bar", "baz"], "xzi4ioaxtmth4"),
    ];
    for (parts, expected) in cases {
        assert_eq!(hash::unique_string(parts), *expected, "uniqueString{parts:?}");
    }
    check_expr("[uniqueString('hello', 'world')]", expect![[r#""a7wkljktk6wne""#]]);
    check_expr(
        "[uniqueString(1)]",
        expect![[
            r#"error InvalidTemplate: The template language function 'uniqueString' expects its parameter 1 to be of type 'String'. The provided value is of type 'Integer'. Please see https://aka.ms/arm-functions for usage details."#
        ]],
    );
}

#[test]
fn guid_is_a_version_5_uuid_in_arms_namespace() {
    // Expected values from Python's uuid.uuid5(UUID('11fb06fb-712d-4ddd-98c7-e71bbd588830'), name),
    // an independent implementation of the algorithm ARM documents.
    let cases: &[(&[&str], &str)] = &[
        (&["test"], "d6a5baf1-8b9b-542a-8525-2982f1f98a0c"),
        (&["a", "b", "c"], "a98fa280-e03f-5afa-8d8e-92d0a9c201e8"),
        (
            &["/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-x"],
            "80206dc2-063c-5763-b911-ff7e6b96087c",
        ),
        (&[""], "e655a85f-3ab2-5e4a-9666-569aa72a5a10"),
    ];
    for (parts, expected) in cases {
        assert_eq!(hash::guid(parts), *expected, "guid{parts:?}");
    }
    check_expr("[guid('a', 'b', 'c')]", expect![[r#""a98fa280-e03f-5afa-8d8e-92d0a9c201e8""#]]);
}

#[test]
fn sha1_matches_fips_vectors() {
    let hex = |bytes: [u8; 20]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
    assert_eq!(hex(hash::sha1(b"abc")), "a9993e364706816aba3e25717850c26c9cd0d89d");
    assert_eq!(hex(hash::sha1(b"")), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    assert_eq!(
        hex(hash::sha1(b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")),
        "84983e441c3bd26ebaae4aa1f95129e5e54670f1"
    );
    assert_eq!(hex(hash::sha1(&[b'a'; 1000])), "291e9a6c66994949b57ba5e650361e98fc36b1ba");
}

// Parameters.

const PARAMETER_TEMPLATE: &str = r#"{
    "parameters": {
        "sku": {"type": "string", "allowedValues": ["Standard_LRS", "Premium_LRS"], "defaultValue": "Standard_LRS"},
        "count": {"type": "int", "minValue": 1, "maxValue": 5, "defaultValue": 2},
        "prefix": {"type": "string", "minLength": 3, "maxLength": 8},
        "zones": {"type": "array", "allowedValues": ["1", "2", "3"], "defaultValue": ["1"]},
        "password": {"type": "securestring", "minLength": 8, "defaultValue": "[concat(parameters('prefix'), '-secret')]"},
        "stamp": {"type": "string", "defaultValue": "[utcNow('yyyy-MM-ddTHH:mm:ss.fffZ')]"},
        "compact": {"type": "string", "defaultValue": "[utcNow()]"},
        "name": {"type": "string", "defaultValue": "[concat(parameters('prefix'), '-', parameters('count'))]"},
        "fresh": {"type": "string", "defaultValue": "[newGuid()]"}
    },
    "resources": []
}"#;

#[track_caller]
fn check_parameters(parameters: Value, expect: Expect) {
    let template = Template::parse(&parse_json(PARAMETER_TEMPLATE)).unwrap();
    let actual = match template.prepare(&parameters, &context()) {
        Ok(prepared) => serde_json::to_string_pretty(&prepared.parameters()).unwrap(),
        Err(error) => render_error(&error),
    };
    expect.assert_eq(&actual);
}

#[test]
fn parameters_take_values_and_defaults() {
    check_parameters(
        json!({"prefix": {"value": "app"}, "zones": {"value": ["2", "3"]}}),
        expect![[r#"
            {
              "sku": {
                "type": "String",
                "value": "Standard_LRS"
              },
              "count": {
                "type": "Int",
                "value": 2
              },
              "prefix": {
                "type": "String",
                "value": "app"
              },
              "zones": {
                "type": "Array",
                "value": [
                  "2",
                  "3"
                ]
              },
              "password": {
                "type": "SecureString"
              },
              "stamp": {
                "type": "String",
                "value": "2024-05-01T12:34:56.789Z"
              },
              "compact": {
                "type": "String",
                "value": "20240501T123456Z"
              },
              "name": {
                "type": "String",
                "value": "app-2"
              },
              "fresh": {
                "type": "String",
                "value": "2fe7b1f4-d56b-51a0-a324-cfc397562911"
              }
            }"#]],
    );
}

#[test]
fn parameters_accept_plain_values_and_parameter_files() {
    let plain = json!({"prefix": "web", "count": 4});
    let file = json!({
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentParameters.json#",
        "contentVersion": "1.0.0.0",
        "parameters": {"prefix": {"value": "web"}, "count": {"value": 4}}
    });
    let template = Template::parse(&parse_json(PARAMETER_TEMPLATE)).unwrap();
    let from_plain = template.prepare(&plain, &context()).unwrap().parameters();
    let from_file = template.prepare(&file, &context()).unwrap().parameters();
    assert_eq!(from_plain, from_file);
    expect![[r#""web-4""#]].assert_eq(&from_plain["name"]["value"].to_string());
}

#[test]
fn missing_parameter() {
    check_parameters(
        json!({}),
        expect![[r#"
            error InvalidTemplate: Deployment template validation failed: 'The value for the template parameter 'prefix' is not provided. Please see https://aka.ms/arm-create-parameter-file for usage details.'.
              at: parameters.prefix"#]],
    );
}

#[test]
fn unknown_parameter() {
    check_parameters(
        json!({"prefix": {"value": "app"}, "colour": {"value": "red"}}),
        expect![[r#"
            error InvalidTemplate: Deployment template validation failed: 'The template parameters 'colour' in the parameters file are not valid; they are not present in the original template and can therefore not be provided at deployment time. The only supported parameters for this template are 'sku, count, prefix, zones, password, stamp, compact, name, fresh'. Please see https://aka.ms/arm-pass-parameter-values for usage details.'.
              at: parameters"#]],
    );
}

#[test]
fn parameter_type_is_checked() {
    check_parameters(
        json!({"prefix": {"value": "app"}, "count": {"value": "3"}}),
        expect![[r#"
            error InvalidTemplate: Deployment template validation failed: 'The template parameter 'count' is not valid: Template parameter JToken type is not valid. Expected 'Integer'. Actual 'String'. Please see https://aka.ms/resource-manager-parameter-files for usage details.'.
              at: parameters.count"#]],
    );
}

#[test]
fn allowed_values_are_checked() {
    check_parameters(
        json!({"prefix": {"value": "app"}, "sku": {"value": "standard_lrs"}}),
        expect![[r#"
            error InvalidTemplate: Deployment template validation failed: 'The provided value 'standard_lrs' for the template parameter 'sku' is not valid. The parameter value is not part of the allowed value(s): 'Standard_LRS,Premium_LRS'.'.
              at: parameters.sku"#]],
    );
    check_parameters(
        json!({"prefix": {"value": "app"}, "zones": {"value": ["1", "4"]}}),
        expect![[r#"
            error InvalidTemplate: Deployment template validation failed: 'The provided value '["1","4"]' for the template parameter 'zones' is not valid. The parameter value is not part of the allowed value(s): '1,2,3'.'.
              at: parameters.zones"#]],
    );
}

#[test]
fn ranges_and_lengths_are_checked() {
    check_parameters(
        json!({"prefix": {"value": "app"}, "count": {"value": 6}}),
        expect![[r#"
            error InvalidTemplate: Deployment template validation failed: 'The provided value '6' for the template parameter 'count' is not valid. The value must be less than or equal to '5'.'.
              at: parameters.count"#]],
    );
    check_parameters(
        json!({"prefix": {"value": "ab"}}),
        expect![[r#"
            error InvalidTemplate: Deployment template validation failed: 'The provided value 'ab' for the template parameter 'prefix' is not valid. Length of the value should be greater than or equal to '3'.'.
              at: parameters.prefix"#]],
    );
    // A secure value is never repeated in a message.
    check_parameters(
        json!({"prefix": {"value": "app"}, "password": {"value": "short"}}),
        expect![[r#"
            error InvalidTemplate: Deployment template validation failed: 'The provided value for the template parameter 'password' is not valid. Length of the value should be greater than or equal to '8'.'.
              at: parameters.password"#]],
    );
}

#[test]
fn key_vault_references_must_be_resolved_first() {
    check_parameters(
        json!({"prefix": {"value": "app"}, "password": {"reference": {"keyVault": {"id": "/x"}, "secretName": "s"}}}),
        expect![[r#"
            error InvalidTemplate: Deployment template validation failed: 'The template parameter 'password' is a Key Vault reference; resolve it to a value before the deployment is prepared.'.
              at: parameters.password"#]],
    );
}

#[test]
fn defaults_that_refer_to_each_other_in_a_cycle_fail() {
    check_prepare(
        r#"{"parameters": {
            "a": {"type": "string", "defaultValue": "[parameters('b')]"},
            "b": {"type": "string", "defaultValue": "[parameters('a')]"}
        }, "resources": []}"#,
        Value::Null,
        expect![[r#"
            error InvalidTemplate: Deployment template validation failed: 'The template parameter 'b' is not valid: The template parameter 'a' refers to itself through the default values of parameters.'.
              at: parameters.b.defaultValue"#]],
    );
}

#[test]
fn variables_cannot_be_read_by_parameter_defaults() {
    check_prepare(
        r#"{"parameters": {"a": {"type": "string", "defaultValue": "[variables('v')]"}},
            "variables": {"v": "x"}, "resources": []}"#,
        Value::Null,
        expect![[r#"
            error InvalidTemplate: Deployment template validation failed: 'The template parameter 'a' is not valid: The template function 'variables' is not expected at this location. Please see https://aka.ms/arm-template-expressions for usage details.'.
              at: parameters.a.defaultValue"#]],
    );
}

// Variables.

#[test]
fn variables_refer_to_each_other_in_any_order_and_loop() {
    let template = r#"{
        "parameters": {"count": {"type": "int", "defaultValue": 3}},
        "variables": {
            "full": "[concat(variables('base'), '-', variables('suffix'))]",
            "base": "app",
            "suffix": "[string(parameters('count'))]",
            "copy": [
                {"name": "disks", "count": "[parameters('count')]", "input": {"lun": "[copyIndex('disks')]", "name": "[concat(variables('base'), '-disk', copyIndex('disks', 1))]"}}
            ],
            "nested": {"copy": [{"name": "ports", "count": 2, "input": "[add(8080, copyIndex('ports'))]"}], "kept": true},
            "loop1": "[variables('loop2')]",
            "loop2": "[variables('loop1')]"
        },
        "resources": []
    }"#;
    check_prepare(
        template,
        Value::Null,
        expect![[r#"
            error InvalidTemplate: Deployment template validation failed: 'The template variable 'loop2' is not valid: The template variable 'loop1' refers to itself through other variables.'.
              at: variables.loop2"#]],
    );
    let without_cycle = template.replace(
        r#""loop1": "[variables('loop2')]",
            "loop2": "[variables('loop1')]""#,
        r#""loop1": 1"#,
    );
    let prepared = Template::parse(&parse_json(&without_cycle))
        .unwrap()
        .prepare(&Value::Null, &context())
        .unwrap();
    let variables: Map<String, Value> = prepared.variables.iter().cloned().collect();
    expect![[r#"{"full":"app-3","base":"app","suffix":"3","disks":[{"lun":0,"name":"app-disk1"},{"lun":1,"name":"app-disk2"},{"lun":2,"name":"app-disk3"}],"nested":{"ports":[8080,8081],"kept":true},"loop1":1}"#]]
        .assert_eq(&Value::Object(variables).to_string());
}

// Resources: copy loops, children, conditions, order.

#[test]
fn copy_loops_expand_with_copy_index() {
    check_deploy(
        r#"{
            "parameters": {"names": {"type": "array", "defaultValue": ["alpha", "beta"]}},
            "resources": [
                {
                    "type": "Microsoft.ManagedIdentity/userAssignedIdentities",
                    "apiVersion": "2023-01-31",
                    "name": "[concat('id-', parameters('names')[copyIndex()])]",
                    "location": "[resourceGroup().location]",
                    "tags": {"position": "[string(copyIndex(1))]"},
                    "copy": {"name": "identities", "count": "[length(parameters('names'))]"}
                },
                {
                    "type": "Microsoft.Compute/virtualMachines",
                    "apiVersion": "2024-03-01",
                    "name": "vm",
                    "location": "westeurope",
                    "dependsOn": ["identities"],
                    "properties": {
                        "storageProfile": {
                            "copy": [{"name": "dataDisks", "count": 2, "input": {"lun": "[copyIndex('dataDisks')]", "diskSizeGB": 32}}]
                        }
                    }
                }
            ],
            "outputs": {
                "ids": {"type": "array", "copy": {"count": 2, "input": "[reference(concat('id-', parameters('names')[copyIndex()])).principalId]"}}
            }
        }"#,
        Value::Null,
        expect![[r#"
            PUT /subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg1/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-alpha (Microsoft.ManagedIdentity/userAssignedIdentities @ 2023-01-31)
            {
              "location": "westeurope",
              "tags": {
                "position": "1"
              }
            }
            PUT /subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg1/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-beta (Microsoft.ManagedIdentity/userAssignedIdentities @ 2023-01-31)
            {
              "location": "westeurope",
              "tags": {
                "position": "2"
              }
            }
            PUT /subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachines/vm (Microsoft.Compute/virtualMachines @ 2024-03-01)
            {
              "location": "westeurope",
              "properties": {
                "storageProfile": {
                  "dataDisks": [
                    {
                      "lun": 0,
                      "diskSizeGB": 32
                    },
                    {
                      "lun": 1,
                      "diskSizeGB": 32
                    }
                  ]
                }
              }
            }
            outputs {
              "ids": {
                "type": "Array",
                "value": [
                  "8f245465-2073-56a8-9e5e-a4916e1c8ea9",
                  "b6d497c3-e72f-56b6-bb40-0900ab821a68"
                ]
              }
            }"#]],
    );
}

#[test]
fn serial_loops_deploy_in_batches() {
    check_prepare(
        r#"{"resources": [{
            "type": "Microsoft.Web/sites", "apiVersion": "2022-03-01",
            "name": "[concat('app', copyIndex())]",
            "copy": {"name": "apps", "count": 5, "mode": "Serial", "batchSize": 2}
        }]}"#,
        Value::Null,
        expect![[r#"
            Microsoft.Web/sites app0 (2022-03-01)
              id: /subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg1/providers/Microsoft.Web/sites/app0
            Microsoft.Web/sites app1 (2022-03-01)
              id: /subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg1/providers/Microsoft.Web/sites/app1
            Microsoft.Web/sites app2 (2022-03-01)
              id: /subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg1/providers/Microsoft.Web/sites/app2
              after: app0
              after: app1
            Microsoft.Web/sites app3 (2022-03-01)
              id: /subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg1/providers/Microsoft.Web/sites/app3
              after: app0
              after: app1
            Microsoft.Web/sites app4 (2022-03-01)
              id: /subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg1/providers/Microsoft.Web/sites/app4
              after: app2
              after: app3
        "#]],
    );
}

#[test]
fn copy_count_is_limited() {
    check_prepare(
        r#"{"resources": [{"type": "Microsoft.Web/sites", "apiVersion": "2022-03-01", "name": "[concat('app', copyIndex())]",
            "copy": {"name": "apps", "count": 801}}]}"#,
        Value::Null,
        expect![[r#"
            error InvalidTemplate: Deployment template validation failed: 'The template resource '[concat('app', copyIndex())]' at 'resources[0]' is not valid: The copy count must be a non-negative integer value and cannot exceed '800'. The value is '801'.'.
              at: resources[0].copy.count"#]],
    );
    check_prepare(
        r#"{"resources": [{"type": "Microsoft.Web/sites", "apiVersion": "2022-03-01", "name": "[concat('app', copyIndex())]",
            "copy": {"name": "apps", "count": 0}}]}"#,
        Value::Null,
        expect![""],
    );
}

#[test]
fn dependencies_by_id_expression_name_type_and_loop() {
    // Goal: every form `dependsOn` accepts orders the deployment. Method: list the resources in
    // reverse of the order they must deploy in, each naming its dependency another way.
    check_prepare(
        r#"{"resources": [
            {"type": "Microsoft.Authorization/roleAssignments", "apiVersion": "2022-04-01", "name": "[guid('ra')]",
             "dependsOn": ["[resourceId('Microsoft.Compute/virtualMachines', 'vm')]"], "properties": {}},
            {"type": "Microsoft.Compute/virtualMachines", "apiVersion": "2024-03-01", "name": "vm",
             "dependsOn": ["Microsoft.Network/networkInterfaces/nic"]},
            {"type": "Microsoft.Network/networkInterfaces", "apiVersion": "2023-05-01", "name": "nic",
             "dependsOn": ["vnet", "ips"]},
            {"type": "Microsoft.Network/publicIPAddresses", "apiVersion": "2023-05-01", "name": "[concat('ip', copyIndex())]",
             "copy": {"name": "ips", "count": 2},
             "dependsOn": ["/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg1/providers/Microsoft.Network/virtualNetworks/vnet"]},
            {"type": "Microsoft.Network/virtualNetworks", "apiVersion": "2023-05-01", "name": "vnet"}
        ]}"#,
        Value::Null,
        expect![[r#"
            Microsoft.Network/virtualNetworks vnet (2023-05-01)
              id: /subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg1/providers/Microsoft.Network/virtualNetworks/vnet
            Microsoft.Network/publicIPAddresses ip0 (2023-05-01)
              id: /subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg1/providers/Microsoft.Network/publicIPAddresses/ip0
              after: vnet
            Microsoft.Network/publicIPAddresses ip1 (2023-05-01)
              id: /subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg1/providers/Microsoft.Network/publicIPAddresses/ip1
              after: vnet
            Microsoft.Network/networkInterfaces nic (2023-05-01)
              id: /subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg1/providers/Microsoft.Network/networkInterfaces/nic
              after: ip0
              after: ip1
              after: vnet
            Microsoft.Compute/virtualMachines vm (2024-03-01)
              id: /subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachines/vm
              after: nic
            Microsoft.Authorization/roleAssignments 268d3300-3ac0-5eb1-bcd3-6d764642cd86 (2022-04-01)
              id: /subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg1/providers/Microsoft.Authorization/roleAssignments/268d3300-3ac0-5eb1-bcd3-6d764642cd86
              after: vm
        "#]],
    );
}

#[test]
fn unknown_dependencies_are_errors() {
    check_prepare(
        r#"{"resources": [{"type": "Microsoft.Web/sites", "apiVersion": "2022-03-01", "name": "app",
            "dependsOn": ["Microsoft.Web/serverfarms/plan"]}]}"#,
        Value::Null,
        expect![[r#"
            error InvalidTemplate: Deployment template validation failed: 'The resource 'Microsoft.Web/serverfarms/plan' is not defined in the template. Please see https://aka.ms/arm-syntax for usage details.'.
              at: resources[0].dependsOn[0]"#]],
    );
    check_prepare(
        r#"{"resources": [{"type": "Microsoft.Web/sites", "apiVersion": "2022-03-01", "name": "app",
            "dependsOn": ["plan"]}]}"#,
        Value::Null,
        expect![[r#"
            error InvalidTemplate: Deployment template validation failed: 'The template reference 'plan' is not valid: could not find template resource or resource copy with this name. Please see https://aka.ms/arm-function-reference for usage details.'.
              at: resources[0].dependsOn[0]"#]],
    );
}

#[test]
fn cycles_are_named() {
    check_prepare(
        r#"{"resources": [
            {"type": "Microsoft.Web/sites", "apiVersion": "2022-03-01", "name": "solo"},
            {"type": "Microsoft.Web/sites", "apiVersion": "2022-03-01", "name": "a", "dependsOn": ["c"]},
            {"type": "Microsoft.Web/sites", "apiVersion": "2022-03-01", "name": "b", "dependsOn": ["a"]},
            {"type": "Microsoft.Web/sites", "apiVersion": "2022-03-01", "name": "c", "dependsOn": ["b", "solo"]}
        ]}"#,
        Value::Null,
        expect![[r#"
            error InvalidTemplate: Deployment template validation failed: 'Circular dependency detected on resource: '/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg1/providers/Microsoft.Web/sites/a'. The cycle is '/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg1/providers/Microsoft.Web/sites/a' -> '/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg1/providers/Microsoft.Web/sites/c' -> '/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg1/providers/Microsoft.Web/sites/b' -> '/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg1/providers/Microsoft.Web/sites/a'. Please see https://aka.ms/arm-syntax-resources for usage details.'.
              at: resources"#]],
    );
}

#[test]
fn conditions_skip_resources_and_keep_order() {
    // `b` is skipped; `c` still waits for what `b` waited for.
    check_prepare(
        r#"{"parameters": {"withB": {"type": "bool", "defaultValue": false}},
            "resources": [
            {"type": "Microsoft.Web/sites", "apiVersion": "2022-03-01", "name": "c", "dependsOn": ["b"]},
            {"type": "Microsoft.Web/sites", "apiVersion": "2022-03-01", "name": "b", "dependsOn": ["a"],
             "condition": "[parameters('withB')]"},
            {"type": "Microsoft.Web/sites", "apiVersion": "2022-03-01", "name": "a", "condition": "[not(parameters('withB'))]"}
        ]}"#,
        Value::Null,
        expect![[r#"
            Microsoft.Web/sites a (2022-03-01)
              id: /subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg1/providers/Microsoft.Web/sites/a
            Microsoft.Web/sites c (2022-03-01)
              id: /subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg1/providers/Microsoft.Web/sites/c
              after: a
        "#]],
    );
    check_prepare(
        r#"{"resources": [{"type": "Microsoft.Web/sites", "apiVersion": "2022-03-01", "name": "c", "condition": "yes"}]}"#,
        Value::Null,
        expect![[r#"
            error InvalidTemplate: Deployment template validation failed: 'The template resource 'c' at 'resources[0]' is not valid: the condition must be a boolean, not a value of type 'String'.'.
              at: resources[0].condition"#]],
    );
}

#[test]
fn duplicate_resources_are_errors() {
    check_prepare(
        r#"{"resources": [
            {"type": "Microsoft.Web/sites", "apiVersion": "2022-03-01", "name": "app"},
            {"type": "Microsoft.Web/Sites", "apiVersion": "2022-03-01", "name": "APP"}
        ]}"#,
        Value::Null,
        expect![[r#"
            error InvalidTemplate: Deployment template validation failed: 'The resource '/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg1/providers/Microsoft.Web/Sites/APP' is defined multiple times in a template. Please see https://aka.ms/arm-syntax-resources for usage details.'.
              at: resources"#]],
    );
}

#[test]
fn nested_children_take_their_parents_type_and_name() {
    check_deploy(
        r#"{"resources": [{
            "type": "Microsoft.Network/virtualNetworks", "apiVersion": "2023-05-01", "name": "vnet", "location": "westeurope",
            "properties": {"addressSpace": {"addressPrefixes": ["10.0.0.0/16"]}},
            "resources": [
                {"type": "subnets", "apiVersion": "2023-05-01", "name": "default",
                 "dependsOn": ["vnet"], "properties": {"addressPrefix": "10.0.0.0/24"}},
                {"type": "Microsoft.Network/virtualNetworks/subnets", "apiVersion": "2023-05-01", "name": "vnet/apps",
                 "properties": {"addressPrefix": "10.0.1.0/24"}}
            ]
        }]}"#,
        Value::Null,
        expect![[r#"
            PUT /subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg1/providers/Microsoft.Network/virtualNetworks/vnet (Microsoft.Network/virtualNetworks @ 2023-05-01)
            {
              "location": "westeurope",
              "properties": {
                "addressSpace": {
                  "addressPrefixes": [
                    "10.0.0.0/16"
                  ]
                }
              }
            }
            PUT /subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg1/providers/Microsoft.Network/virtualNetworks/vnet/subnets/default (Microsoft.Network/virtualNetworks/subnets @ 2023-05-01)
            {
              "properties": {
                "addressPrefix": "10.0.0.0/24"
              }
            }
            PUT /subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg1/providers/Microsoft.Network/virtualNetworks/vnet/subnets/apps (Microsoft.Network/virtualNetworks/subnets @ 2023-05-01)
            {
              "properties": {
                "addressPrefix": "10.0.1.0/24"
              }
            }
            outputs {}"#]],
    );
}

#[test]
fn segment_lengths_must_match() {
    check_prepare(
        r#"{"resources": [{"type": "Microsoft.Network/virtualNetworks/subnets", "apiVersion": "2023-05-01", "name": "default"}]}"#,
        Value::Null,
        expect![[r#"
            error InvalidTemplate: Deployment template validation failed: 'The template resource 'default' for type 'Microsoft.Network/virtualNetworks/subnets' at 'resources[0]' has incorrect segment lengths. A nested resource type must have identical number of segments as its resource name. A root resource type must have segment length one greater than its resource name. Please see https://aka.ms/arm-syntax-resources for usage details.'.
              at: resources[0].name"#]],
    );
}

#[test]
fn extension_resources_live_under_their_scope() {
    check_prepare(
        r#"{"parameters": {"vault": {"type": "string", "defaultValue": "kv1"}},
            "resources": [
            {"type": "Microsoft.KeyVault/vaults", "apiVersion": "2023-07-01", "name": "[parameters('vault')]"},
            {"type": "Microsoft.Authorization/roleAssignments", "apiVersion": "2022-04-01", "name": "[guid('bicep')]",
             "scope": "[format('Microsoft.KeyVault/vaults/{0}', parameters('vault'))]",
             "dependsOn": ["[resourceId('Microsoft.KeyVault/vaults', parameters('vault'))]"]},
            {"type": "Microsoft.Authorization/roleAssignments", "apiVersion": "2022-04-01", "name": "[guid('json')]",
             "scope": "[resourceId('Microsoft.KeyVault/vaults', parameters('vault'))]",
             "dependsOn": ["[extensionResourceId(resourceId('Microsoft.KeyVault/vaults', parameters('vault')), 'Microsoft.Authorization/roleAssignments', guid('bicep'))]"]},
            {"type": "Microsoft.KeyVault/vaults/providers/roleAssignments", "apiVersion": "2015-07-01",
             "name": "[concat(parameters('vault'), '/Microsoft.Authorization/', guid('az'))]",
             "dependsOn": ["Microsoft.KeyVault/vaults/kv1"]},
            {"type": "Microsoft.Authorization/roleAssignments", "apiVersion": "2022-04-01", "name": "[guid('sub')]",
             "scope": "[subscription().id]"}
        ]}"#,
        Value::Null,
        expect![[r#"
            Microsoft.KeyVault/vaults kv1 (2023-07-01)
              id: /subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg1/providers/Microsoft.KeyVault/vaults/kv1
            Microsoft.Authorization/roleAssignments 75cbf73a-e4ac-573c-aafc-a3bbe67443a7 (2022-04-01)
              id: /subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg1/providers/Microsoft.KeyVault/vaults/kv1/providers/Microsoft.Authorization/roleAssignments/75cbf73a-e4ac-573c-aafc-a3bbe67443a7
              after: kv1
            Microsoft.Authorization/roleAssignments 883006e2-4124-5bdb-abd8-510d8af2c519 (2022-04-01)
              id: /subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg1/providers/Microsoft.KeyVault/vaults/kv1/providers/Microsoft.Authorization/roleAssignments/883006e2-4124-5bdb-abd8-510d8af2c519
              after: 75cbf73a-e4ac-573c-aafc-a3bbe67443a7
            Microsoft.Authorization/roleAssignments kv1/Microsoft.Authorization/c876126f-c5c0-5353-8285-e476ed2bab02 (2015-07-01)
              id: /subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg1/providers/Microsoft.KeyVault/vaults/kv1/providers/Microsoft.Authorization/roleAssignments/c876126f-c5c0-5353-8285-e476ed2bab02
              after: kv1
            Microsoft.Authorization/roleAssignments 639d7333-17ed-5f5a-811a-841c37281c69 (2022-04-01)
              id: /subscriptions/11111111-1111-1111-1111-111111111111/providers/Microsoft.Authorization/roleAssignments/639d7333-17ed-5f5a-811a-841c37281c69
        "#]],
    );
}

#[test]
fn subscription_deployments_create_groups() {
    check_prepare_in(
        r#"{"parameters": {"name": {"type": "string", "defaultValue": "rg-new"}},
            "resources": [
            {"type": "Microsoft.Resources/resourceGroups", "apiVersion": "2022-09-01", "name": "[parameters('name')]",
             "location": "[deployment().location]"},
            {"type": "Microsoft.Authorization/roleAssignments", "apiVersion": "2022-04-01", "name": "[guid(subscription().id, 'reader')]",
             "dependsOn": ["[subscriptionResourceId('Microsoft.Resources/resourceGroups', parameters('name'))]"],
             "properties": {"roleDefinitionId": "[subscriptionResourceId('Microsoft.Authorization/roleDefinitions', 'acdd72a7-3385-48ef-bd42-f606fba81ae7')]"}}
        ]}"#,
        Value::Null,
        &subscription_context(),
        expect![[r#"
            Microsoft.Resources/resourceGroups rg-new (2022-09-01)
              id: /subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg-new
            Microsoft.Authorization/roleAssignments 97389224-edb8-5912-8e32-1713d123c263 (2022-04-01)
              id: /subscriptions/11111111-1111-1111-1111-111111111111/providers/Microsoft.Authorization/roleAssignments/97389224-edb8-5912-8e32-1713d123c263
              after: rg-new
        "#]],
    );
    // A subscription deployment has no resource group to ask about.
    let output = deploy(
        r#"{"resources": [{"type": "Microsoft.Web/sites", "apiVersion": "2022-03-01", "name": "app", "location": "[resourceGroup().location]"}]}"#,
        Value::Null,
        &subscription_context(),
        &FakeArm::default(),
    );
    expect![[r#"
        error InvalidTemplate: Unable to process template language expressions for resource '/subscriptions/11111111-1111-1111-1111-111111111111/providers/Microsoft.Web/sites/app' at 'resources[0].location'. 'The template function 'resourceGroup' is not expected at this location. A subscription deployment has no resource group. Please see https://aka.ms/arm-template-expressions for usage details.'
          at: resources[0].location"#]].assert_eq(&output);
}

#[test]
fn reference_is_only_allowed_in_bodies_and_outputs() {
    check_prepare(
        r#"{"resources": [{"type": "Microsoft.Web/sites", "apiVersion": "2022-03-01",
            "name": "[reference('x').name]"}]}"#,
        Value::Null,
        expect![[r#"
            error InvalidTemplate: Deployment template validation failed: 'The template resource '[reference('x').name]' at 'resources[0]' is not valid: The template function 'reference' is not expected at this location. Please see https://aka.ms/arm-template-expressions for usage details.'.
              at: resources[0].name"#]],
    );
}

#[test]
fn reference_by_name_implies_a_dependency() {
    check_prepare(
        r#"{"resources": [
            {"type": "Microsoft.Web/sites", "apiVersion": "2022-03-01", "name": "app",
             "properties": {"owner": "[reference('owner').principalId]"}},
            {"type": "Microsoft.ManagedIdentity/userAssignedIdentities", "apiVersion": "2023-01-31", "name": "owner"}
        ]}"#,
        Value::Null,
        expect![[r#"
            Microsoft.ManagedIdentity/userAssignedIdentities owner (2023-01-31)
              id: /subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg1/providers/Microsoft.ManagedIdentity/userAssignedIdentities/owner
            Microsoft.Web/sites app (2022-03-01)
              id: /subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg1/providers/Microsoft.Web/sites/app
              after: owner
              reads: /subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg1/providers/Microsoft.ManagedIdentity/userAssignedIdentities/owner
        "#]],
    );
}

#[test]
fn template_structure_errors() {
    check_prepare(
        r#"{"parameters": {}}"#,
        Value::Null,
        expect![[r#"
            error InvalidTemplate: Deployment template validation failed: 'Required property 'resources' not found in JSON. Path ''.'.
              at: -"#]],
    );
    check_prepare(
        r#"{"languageVersion": "2.0", "resources": {"a": {"type": "Microsoft.Web/sites", "apiVersion": "2022-03-01", "name": "a"}}}"#,
        Value::Null,
        expect![[r#"
            error InvalidTemplate: Deployment template validation failed: 'Templates with symbolic resource names (languageVersion 2.0) are not supported by Ambient. Compile Bicep files without symbolic names, or use languageVersion 1.0.'.
              at: resources"#]],
    );
    check_prepare(
        r#"{"resources": [{"type": "Microsoft.Web/sites", "name": "a"}]}"#,
        Value::Null,
        expect![[r#"
            error InvalidTemplate: Deployment template validation failed: 'The template resource 'a' at 'resources[0]' is not valid: the 'apiVersion' property cannot be null or empty.'.
              at: resources[0].apiVersion"#]],
    );
    check_prepare(
        r#"{"parameters": {"p": {"type": "text"}}, "resources": []}"#,
        Value::Null,
        expect![[r#"
            error InvalidTemplate: Deployment template validation failed: 'The template parameter 'p' is not valid: the type 'text' is not valid. Allowed types are 'String, SecureString, Int, Bool, Object, SecureObject, Array'.'.
              at: parameters.p"#]],
    );
}

// Whole deployments.

#[test]
fn seed_identity_block_evaluates_its_keys() {
    // The identity block exactly as the seeds write it, with the key an expression.
    check_deploy(
        fixture("seed-identity-block"),
        json!({"identityName": {"value": "app-identity"}, "siteName": {"value": "app1"}}),
        expect![[r#"
            PUT /subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg1/providers/Microsoft.ManagedIdentity/userAssignedIdentities/app-identity (Microsoft.ManagedIdentity/userAssignedIdentities @ 2023-01-31)
            {
              "location": "westeurope"
            }
            PUT /subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg1/providers/Microsoft.Web/sites/app1 (Microsoft.Web/sites @ 2022-03-01)
            {
              "location": "westeurope",
              "kind": "app",
              "identity": {
                "type": "UserAssigned",
                "userAssignedIdentities": {
                  "/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg1/providers/Microsoft.ManagedIdentity/userAssignedIdentities/app-identity": {}
                }
              },
              "properties": {
                "siteConfig": {
                  "appSettings": [
                    {
                      "name": "AZURE_CLIENT_ID",
                      "value": "887ffc25-ed8b-5b97-9b92-568d425cc115"
                    }
                  ]
                }
              }
            }
            outputs {}"#]],
    );
}

#[test]
fn identity_vm_and_role_assignment() {
    // Goal: the issue's proof template deploys in order and the role assignment gets the
    // identity's principal. Method: deploy against the fake ARM, which gives identities
    // principals, and print every PUT and the outputs.
    check_deploy(
        fixture("identity-vm-role"),
        json!({"vmName": {"value": "app-vm"}}),
        expect![[r#"
            PUT /subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg1/providers/Microsoft.ManagedIdentity/userAssignedIdentities/app-identity (Microsoft.ManagedIdentity/userAssignedIdentities @ 2023-01-31)
            {
              "location": "westeurope"
            }
            PUT /subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg1/providers/Microsoft.Authorization/roleAssignments/4203c23e-5885-5dd9-b24e-46e8e7a91f97 (Microsoft.Authorization/roleAssignments @ 2022-04-01)
            {
              "properties": {
                "roleDefinitionId": "/subscriptions/11111111-1111-1111-1111-111111111111/providers/Microsoft.Authorization/roleDefinitions/acdd72a7-3385-48ef-bd42-f606fba81ae7",
                "principalId": "4adf49f4-54a8-539d-ba41-f0500f42d122",
                "principalType": "ServicePrincipal"
              }
            }
            PUT /subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachines/app-vm (Microsoft.Compute/virtualMachines @ 2024-03-01)
            {
              "location": "westeurope",
              "tags": {
                "createdBy": "deploy1"
              },
              "identity": {
                "type": "UserAssigned",
                "userAssignedIdentities": {
                  "/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg1/providers/Microsoft.ManagedIdentity/userAssignedIdentities/app-identity": {}
                }
              },
              "properties": {
                "hardwareProfile": {
                  "vmSize": "Standard_B1s"
                },
                "osProfile": {
                  "computerName": "app-vm",
                  "customData": "QVpVUkVfQ0xJRU5UX0lEPTg4N2ZmYzI1LWVkOGItNWI5Ny05YjkyLTU2OGQ0MjVjYzExNQ=="
                }
              }
            }
            outputs {
              "principalId": {
                "type": "String",
                "value": "4adf49f4-54a8-539d-ba41-f0500f42d122"
              },
              "clientId": {
                "type": "String",
                "value": "887ffc25-ed8b-5b97-9b92-568d425cc115"
              },
              "vmIdentity": {
                "type": "Object",
                "value": {
                  "type": "UserAssigned",
                  "userAssignedIdentities": {
                    "/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg1/providers/Microsoft.ManagedIdentity/userAssignedIdentities/app-identity": {}
                  }
                }
              },
              "roleAssignmentId": {
                "type": "String",
                "value": "/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg1/providers/Microsoft.Authorization/roleAssignments/4203c23e-5885-5dd9-b24e-46e8e7a91f97"
              }
            }"#]],
    );
}

#[test]
fn az_vm_create_template() {
    // The template `az vm create -g rg1 -n vm1 --image Ubuntu2204 --assign-identity --role
    // Reader --scope <group> --generate-ssh-keys` sends.
    check_deploy(
        fixture("az-vm-create"),
        Value::Null,
        expect![[r#"
        PUT /subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg1/providers/Microsoft.Network/virtualNetworks/vm1VNET (Microsoft.Network/virtualNetworks @ 2015-06-15)
        {
          "location": "westeurope",
          "tags": {},
          "properties": {
            "addressSpace": {
              "addressPrefixes": [
                "10.0.0.0/16"
              ]
            },
            "subnets": [
              {
                "name": "vm1Subnet",
                "properties": {
                  "addressPrefix": "10.0.0.0/24"
                }
              }
            ]
          }
        }
        PUT /subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg1/providers/Microsoft.Network/networkSecurityGroups/vm1NSG (Microsoft.Network/networkSecurityGroups @ 2015-06-15)
        {
          "location": "westeurope",
          "tags": {},
          "properties": {
            "securityRules": [
              {
                "name": "default-allow-ssh",
                "properties": {
                  "protocol": "Tcp",
                  "sourcePortRange": "*",
                  "destinationPortRange": "22",
                  "sourceAddressPrefix": "*",
                  "destinationAddressPrefix": "*",
                  "access": "Allow",
                  "priority": 1000,
                  "direction": "Inbound"
                }
              }
            ]
          }
        }
        PUT /subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg1/providers/Microsoft.Network/publicIPAddresses/vm1PublicIP (Microsoft.Network/publicIPAddresses @ 2022-01-01)
        {
          "location": "westeurope",
          "tags": {},
          "properties": {
            "publicIPAllocationMethod": "Static"
          },
          "sku": {
            "name": "Standard"
          }
        }
        PUT /subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg1/providers/Microsoft.Network/networkInterfaces/vm1VMNic (Microsoft.Network/networkInterfaces @ 2015-06-15)
        {
          "location": "westeurope",
          "tags": {},
          "properties": {
            "ipConfigurations": [
              {
                "name": "ipconfigvm1",
                "properties": {
                  "privateIPAllocationMethod": "Dynamic",
                  "subnet": {
                    "id": "/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg1/providers/Microsoft.Network/virtualNetworks/vm1VNET/subnets/vm1Subnet"
                  },
                  "publicIPAddress": {
                    "id": "/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg1/providers/Microsoft.Network/publicIPAddresses/vm1PublicIP"
                  }
                }
              }
            ],
            "networkSecurityGroup": {
              "id": "/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg1/providers/Microsoft.Network/networkSecurityGroups/vm1NSG"
            }
          }
        }
        PUT /subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachines/vm1 (Microsoft.Compute/virtualMachines @ 2024-07-01)
        {
          "location": "westeurope",
          "tags": {},
          "properties": {
            "hardwareProfile": {
              "vmSize": "Standard_DS1_v2"
            },
            "networkProfile": {
              "networkInterfaces": [
                {
                  "id": "/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg1/providers/Microsoft.Network/networkInterfaces/vm1VMNic",
                  "properties": {
                    "deleteOption": null
                  }
                }
              ]
            },
            "storageProfile": {
              "osDisk": {
                "createOption": "fromImage",
                "name": null,
                "caching": "ReadWrite",
                "managedDisk": {
                  "storageAccountType": "Premium_LRS"
                }
              },
              "imageReference": {
                "publisher": "Canonical",
                "offer": "0001-com-ubuntu-server-jammy",
                "sku": "22_04-lts-gen2",
                "version": "latest"
              }
            },
            "osProfile": {
              "computerName": "vm1",
              "adminUsername": "azureuser",
              "linuxConfiguration": {
                "disablePasswordAuthentication": true,
                "ssh": {
                  "publicKeys": [
                    {
                      "keyData": "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7 azureuser@host",
                      "path": "/home/azureuser/.ssh/authorized_keys"
                    }
                  ]
                }
              }
            },
            "securityProfile": {
              "securityType": "TrustedLaunch",
              "uefiSettings": {
                "secureBootEnabled": true,
                "vTpmEnabled": true
              }
            }
          },
          "identity": {
            "type": "SystemAssigned"
          }
        }
        PUT /subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg1/providers/Microsoft.Authorization/roleAssignments/5f0b2ed6-8c4b-4c8c-9f1f-7b3c2d6e9a10 (Microsoft.Authorization/roleAssignments @ 2015-07-01)
        {
          "properties": {
            "roleDefinitionId": "/subscriptions/11111111-1111-1111-1111-111111111111/providers/Microsoft.Authorization/roleDefinitions/acdd72a7-3385-48ef-bd42-f606fba81ae7",
            "principalId": "28e2424d-406f-5cbe-8b01-8e39765b83ff",
            "scope": "/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg1"
          }
        }
        outputs {}"#]],
    );
}

#[test]
fn az_vm_create_count_template() {
    // `az vm create --count 2`: copy loops named by az, NICs waiting for both public IPs.
    check_deploy(
        fixture("az-vm-create-count"),
        json!({"adminPassword": {"value": "Passw0rd!Passw0rd"}}),
        expect![[r#"
        PUT /subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg1/providers/Microsoft.Network/virtualNetworks/vmVNET (Microsoft.Network/virtualNetworks @ 2015-06-15)
        {
          "location": "westeurope",
          "tags": {},
          "properties": {
            "addressSpace": {
              "addressPrefixes": [
                "10.0.0.0/16"
              ]
            },
            "subnets": [
              {
                "name": "vmSubnet",
                "properties": {
                  "addressPrefix": "10.0.0.0/24"
                }
              }
            ]
          }
        }
        PUT /subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg1/providers/Microsoft.Network/networkSecurityGroups/vmNSG (Microsoft.Network/networkSecurityGroups @ 2015-06-15)
        {
          "location": "westeurope",
          "tags": {}
        }
        PUT /subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg1/providers/Microsoft.Network/publicIPAddresses/vmPublicIP0 (Microsoft.Network/publicIPAddresses @ 2022-01-01)
        {
          "location": "westeurope",
          "tags": {},
          "properties": {
            "publicIPAllocationMethod": "Static"
          },
          "sku": {
            "name": "Standard"
          }
        }
        PUT /subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg1/providers/Microsoft.Network/publicIPAddresses/vmPublicIP1 (Microsoft.Network/publicIPAddresses @ 2022-01-01)
        {
          "location": "westeurope",
          "tags": {},
          "properties": {
            "publicIPAllocationMethod": "Static"
          },
          "sku": {
            "name": "Standard"
          }
        }
        PUT /subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg1/providers/Microsoft.Network/networkInterfaces/vmVMNic0 (Microsoft.Network/networkInterfaces @ 2015-06-15)
        {
          "location": "westeurope",
          "tags": {},
          "properties": {
            "ipConfigurations": [
              {
                "name": "ipconfigvm0",
                "properties": {
                  "privateIPAllocationMethod": "Dynamic",
                  "subnet": {
                    "id": "/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg1/providers/Microsoft.Network/virtualNetworks/vmVNET/subnets/vmSubnet"
                  },
                  "publicIPAddress": {
                    "id": "/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg1/providers/Microsoft.Network/publicIPAddresses/vmPublicIP0"
                  }
                }
              }
            ],
            "networkSecurityGroup": {
              "id": "/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg1/providers/Microsoft.Network/networkSecurityGroups/vmNSG"
            }
          }
        }
        PUT /subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg1/providers/Microsoft.Network/networkInterfaces/vmVMNic1 (Microsoft.Network/networkInterfaces @ 2015-06-15)
        {
          "location": "westeurope",
          "tags": {},
          "properties": {
            "ipConfigurations": [
              {
                "name": "ipconfigvm1",
                "properties": {
                  "privateIPAllocationMethod": "Dynamic",
                  "subnet": {
                    "id": "/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg1/providers/Microsoft.Network/virtualNetworks/vmVNET/subnets/vmSubnet"
                  },
                  "publicIPAddress": {
                    "id": "/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg1/providers/Microsoft.Network/publicIPAddresses/vmPublicIP1"
                  }
                }
              }
            ],
            "networkSecurityGroup": {
              "id": "/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg1/providers/Microsoft.Network/networkSecurityGroups/vmNSG"
            }
          }
        }
        PUT /subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachines/vm0 (Microsoft.Compute/virtualMachines @ 2024-07-01)
        {
          "location": "westeurope",
          "tags": {},
          "properties": {
            "hardwareProfile": {
              "vmSize": "Standard_DS1_v2"
            },
            "networkProfile": {
              "networkInterfaces": [
                {
                  "id": "/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg1/providers/Microsoft.Network/networkInterfaces/vmVMNic0",
                  "properties": {
                    "deleteOption": null
                  }
                }
              ]
            },
            "osProfile": {
              "computerName": "vm0",
              "adminUsername": "azureuser",
              "adminPassword": "Passw0rd!Passw0rd"
            }
          }
        }
        PUT /subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachines/vm1 (Microsoft.Compute/virtualMachines @ 2024-07-01)
        {
          "location": "westeurope",
          "tags": {},
          "properties": {
            "hardwareProfile": {
              "vmSize": "Standard_DS1_v2"
            },
            "networkProfile": {
              "networkInterfaces": [
                {
                  "id": "/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg1/providers/Microsoft.Network/networkInterfaces/vmVMNic1",
                  "properties": {
                    "deleteOption": null
                  }
                }
              ]
            },
            "osProfile": {
              "computerName": "vm1",
              "adminUsername": "azureuser",
              "adminPassword": "Passw0rd!Passw0rd"
            }
          }
        }
        outputs {
          "VM": {
            "type": "Object",
            "value": {
              "hardwareProfile": {
                "vmSize": "Standard_DS1_v2"
              },
              "networkProfile": {
                "networkInterfaces": [
                  {
                    "id": "/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg1/providers/Microsoft.Network/networkInterfaces/vmVMNic0",
                    "properties": {
                      "deleteOption": null
                    }
                  }
                ]
              },
              "osProfile": {
                "computerName": "vm0",
                "adminUsername": "azureuser",
                "adminPassword": "Passw0rd!Passw0rd"
              },
              "provisioningState": "Succeeded"
            }
          }
        }"#]],
    );
}

#[test]
fn what_if_keeps_expressions_it_cannot_resolve_yet() {
    let template = Template::parse(&parse_json(fixture("identity-vm-role"))).unwrap();
    let prepared = template.prepare(&json!({"vmName": {"value": "app-vm"}}), &context()).unwrap();
    let arm = FakeArm::default();
    let previews: Vec<String> = (0..prepared.resources().len())
        .map(|index| serde_json::to_string(&prepared.preview(index, &arm).unwrap().body).unwrap())
        .collect();
    expect![[r#"
        {"location":"westeurope"}
        {"properties":{"roleDefinitionId":"/subscriptions/11111111-1111-1111-1111-111111111111/providers/Microsoft.Authorization/roleDefinitions/acdd72a7-3385-48ef-bd42-f606fba81ae7","principalId":"[reference(variables('identityId')).principalId]","principalType":"ServicePrincipal"}}
        {"location":"westeurope","tags":{"createdBy":"deploy1"},"identity":{"type":"UserAssigned","userAssignedIdentities":{"/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg1/providers/Microsoft.ManagedIdentity/userAssignedIdentities/app-identity":{}}},"properties":{"hardwareProfile":{"vmSize":"Standard_B1s"},"osProfile":{"computerName":"app-vm","customData":"[base64(concat('AZURE_CLIENT_ID=', reference(variables('identityId')).clientId))]"}}}"#]].assert_eq(&previews.join("\n"));
    expect![[r#"
        error ResourceNotFound: The Resource 'Microsoft.ManagedIdentity/userAssignedIdentities/app-identity' under resource group 'rg1' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix
          at: resources[0].properties.principalId"#]].assert_eq(&render_error(&prepared.evaluate(1, &arm).unwrap_err()));
}

#[test]
fn outputs_follow_conditions_and_hide_secure_values() {
    check_deploy(
        r#"{"resources": [], "outputs": {
            "fine": {"type": "int", "value": 3},
            "hidden": {"type": "securestring", "value": "s3cret"},
            "skipped": {"type": "string", "condition": false, "value": "[reference('nothing').x]"},
            "where": {"type": "string", "condition": "[equals(resourceGroup().name, 'rg1')]", "value": "[resourceGroup().location]"}
        }}"#,
        Value::Null,
        expect![[r#"
            outputs {
              "fine": {
                "type": "Int",
                "value": 3
              },
              "hidden": {
                "type": "SecureString"
              },
              "where": {
                "type": "String",
                "value": "westeurope"
              }
            }"#]],
    );
}

#[test]
fn output_types_are_checked() {
    check_deploy(
        r#"{"resources": [], "outputs": {"wrong": {"type": "string", "value": 3}}}"#,
        Value::Null,
        expect![[r#"
            error DeploymentOutputEvaluationFailed: The template output 'wrong' is not valid: Template output JToken type is not valid. Expected 'String'. Actual 'Integer'.
              at: outputs.wrong"#]],
    );
}

#[test]
fn template_hash_is_stable() {
    let template = Template::parse(&parse_json(fixture("az-vm-create"))).unwrap();
    let again = Template::parse(&parse_json(fixture("az-vm-create"))).unwrap();
    assert_eq!(template.hash(), again.hash());
    assert_ne!(
        template.hash(),
        Template::parse(&parse_json(fixture("identity-vm-role"))).unwrap().hash()
    );
    assert_eq!(template.content_version(), Some("1.0.0.0"));
}

// Limits.

#[test]
fn deep_expressions_are_refused_not_overflowed() {
    // Goal: nesting is bounded before the stack is. Method: parse nesting just under and just
    // over the limit, and evaluate a chain of variables that each add nesting.
    let nested = |depth: usize| format!("{}'x'{}", "concat(".repeat(depth), ")".repeat(depth));
    check_expr(&format!("[{}]", nested(127)), expect![[r#""x""#]]);
    let error = expression::parse(&nested(200)).unwrap_err();
    assert!(error.ends_with("it nests deeper than the limit of 128 levels."), "{error}");
    let mut variables = Map::new();
    for index in 0..100 {
        variables
            .insert(format!("v{index}"), json!(format!("[concat(variables('v{}'))]", index + 1)));
    }
    variables.insert("v100".to_owned(), json!("end"));
    let template = json!({"variables": variables, "resources": []}).to_string();
    check_prepare(
        &template,
        Value::Null,
        expect![[r#"
        error InvalidTemplate: Deployment template validation failed: 'The template variable 'v42' is not valid: The template expression nests deeper than the limit of 128 levels.'.
          at: variables.v42"#]],
    );
}

#[test]
fn nested_loops_are_bounded() {
    check_deploy(
        r#"{"resources": [{"type": "Microsoft.Web/sites", "apiVersion": "2022-03-01", "name": "app",
            "properties": {"copy": [{"name": "a", "count": 800, "input": {"copy": [{"name": "b", "count": 800,
                "input": {"copy": [{"name": "c", "count": 800, "input": "[copyIndex('c')]"}]}}]}}]}}]}"#,
        Value::Null,
        expect![[r#"
            error InvalidTemplate: Unable to process template language expressions for resource '/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg1/providers/Microsoft.Web/sites/app' at 'resources[0].properties.copy[0].input.copy[0].input.copy[0].input'. 'The template takes more than 1000000 steps to evaluate; reduce its loops.'
              at: resources[0].properties.copy[0].input.copy[0].input.copy[0].input"#]],
    );
}

#[test]
fn literal_property_loops_expand() {
    check_deploy(
        r#"{"resources": [{"type": "Microsoft.Web/sites", "apiVersion": "2022-03-01", "name": "app",
            "properties": {"ports": {"copy": [{"name": "list", "count": 2, "input": {"open": true}}]}}}]}"#,
        Value::Null,
        expect![[r#"
            PUT /subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg1/providers/Microsoft.Web/sites/app (Microsoft.Web/sites @ 2022-03-01)
            {
              "properties": {
                "ports": {
                  "list": [
                    {
                      "open": true
                    },
                    {
                      "open": true
                    }
                  ]
                }
              }
            }
            outputs {}"#]],
    );
}

#[test]
fn huge_strings_are_refused_before_they_are_built() {
    check_expr(
        "[format('{0,2000000000}', 'a')]",
        expect![
            "error InvalidTemplate: Unable to evaluate template language function 'format': the resulting string is longer than the limit of 131072 characters. Please see https://aka.ms/arm-functions for usage details."
        ],
    );
    check_expr(
        "[replace(padLeft('', 100000, 'a'), 'a', padLeft('', 100000, 'b'))]",
        expect![
            "error InvalidTemplate: Unable to evaluate template language function 'replace': the resulting string is longer than the limit of 131072 characters. Please see https://aka.ms/arm-functions for usage details."
        ],
    );
}

#[test]
fn user_defined_functions_are_not_supported() {
    check_prepare(
        r#"{"functions": [{"namespace": "contoso", "members": {"name": {"parameters": [], "output": {"type": "string", "value": "x"}}}}],
            "resources": [], "outputs": {"o": {"type": "string", "value": "[contoso.name()]"}}}"#,
        Value::Null,
        expect![[r#"
            error InvalidTemplate: Deployment template validation failed: 'The template output 'o' is not valid: The template function 'contoso.name' is not valid. Please see https://aka.ms/arm-functions for usage details.'.
              at: outputs.o.value"#]],
    );
}

#[test]
fn nested_deployments_with_inner_scope_keep_their_template() {
    // Goal: a Bicep module (a nested deployment evaluated in its own scope) reaches the caller
    // with its template untouched, so the caller can deploy it with this engine in turn. Method:
    // the nested template uses a parameter the outer template does not have, and an escaped
    // literal that must keep its escape.
    check_deploy(
        r#"{"parameters": {"prefix": {"type": "string", "defaultValue": "app"}},
            "resources": [{
            "type": "Microsoft.Resources/deployments", "apiVersion": "2022-09-01", "name": "module1",
            "properties": {
                "expressionEvaluationOptions": {"scope": "inner"},
                "mode": "Incremental",
                "parameters": {"name": {"value": "[concat(parameters('prefix'), '-id')]"}},
                "template": {
                    "parameters": {"name": {"type": "string"}},
                    "resources": [{"type": "Microsoft.ManagedIdentity/userAssignedIdentities", "apiVersion": "2023-01-31",
                        "name": "[parameters('name')]", "tags": {"note": "[[literal]"}}]
                }
            }
        }]}"#,
        Value::Null,
        expect![[r#"
            PUT /subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg1/providers/Microsoft.Resources/deployments/module1 (Microsoft.Resources/deployments @ 2022-09-01)
            {
              "properties": {
                "expressionEvaluationOptions": {
                  "scope": "inner"
                },
                "mode": "Incremental",
                "parameters": {
                  "name": {
                    "value": "app-id"
                  }
                },
                "template": {
                  "parameters": {
                    "name": {
                      "type": "string"
                    }
                  },
                  "resources": [
                    {
                      "type": "Microsoft.ManagedIdentity/userAssignedIdentities",
                      "apiVersion": "2023-01-31",
                      "name": "[parameters('name')]",
                      "tags": {
                        "note": "[[literal]"
                      }
                    }
                  ]
                }
              }
            }
            outputs {}"#]],
    );
}

#[test]
fn resources_say_what_they_will_read() {
    // Goal: a caller with an asynchronous store can load what `reference()` will ask for before
    // evaluating each resource. Method: list the reads of the fixtures that use `reference()`.
    check_prepare(
        fixture("identity-vm-role"),
        json!({"vmName": {"value": "app-vm"}}),
        expect![[r#"
        Microsoft.ManagedIdentity/userAssignedIdentities app-identity (2023-01-31)
          id: /subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg1/providers/Microsoft.ManagedIdentity/userAssignedIdentities/app-identity
        Microsoft.Authorization/roleAssignments 4203c23e-5885-5dd9-b24e-46e8e7a91f97 (2022-04-01)
          id: /subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg1/providers/Microsoft.Authorization/roleAssignments/4203c23e-5885-5dd9-b24e-46e8e7a91f97
          after: app-identity
          reads: /subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg1/providers/Microsoft.ManagedIdentity/userAssignedIdentities/app-identity
        Microsoft.Compute/virtualMachines app-vm (2024-03-01)
          id: /subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachines/app-vm
          after: app-identity
          reads: /subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg1/providers/Microsoft.ManagedIdentity/userAssignedIdentities/app-identity
        outputs read: /subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg1/providers/Microsoft.ManagedIdentity/userAssignedIdentities/app-identity
        outputs read: /subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachines/app-vm
    "#]],
    );
    check_prepare(
        fixture("az-vm-create"),
        Value::Null,
        expect![[r#"
        Microsoft.Network/virtualNetworks vm1VNET (2015-06-15)
          id: /subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg1/providers/Microsoft.Network/virtualNetworks/vm1VNET
        Microsoft.Network/networkSecurityGroups vm1NSG (2015-06-15)
          id: /subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg1/providers/Microsoft.Network/networkSecurityGroups/vm1NSG
        Microsoft.Network/publicIPAddresses vm1PublicIP (2022-01-01)
          id: /subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg1/providers/Microsoft.Network/publicIPAddresses/vm1PublicIP
        Microsoft.Network/networkInterfaces vm1VMNic (2015-06-15)
          id: /subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg1/providers/Microsoft.Network/networkInterfaces/vm1VMNic
          after: vm1VNET
          after: vm1NSG
          after: vm1PublicIP
        Microsoft.Compute/virtualMachines vm1 (2024-07-01)
          id: /subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachines/vm1
          after: vm1VMNic
        Microsoft.Authorization/roleAssignments 5f0b2ed6-8c4b-4c8c-9f1f-7b3c2d6e9a10 (2015-07-01)
          id: /subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg1/providers/Microsoft.Authorization/roleAssignments/5f0b2ed6-8c4b-4c8c-9f1f-7b3c2d6e9a10
          after: vm1
          reads: /subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachines/vm1
    "#]],
    );
}

#[test]
fn function_app_with_storage_keys() {
    // Goal: the usual function app template (storage connection string from `listKeys`, a
    // system-assigned identity, `uniqueString` names) deploys when the resolver serves
    // `listKeys`. Method: the fake ARM serves it for storage accounts.
    check_deploy(
        r#"{
            "parameters": {"appName": {"type": "string", "defaultValue": "[concat('fn', uniqueString(resourceGroup().id))]"}},
            "variables": {"storageName": "[concat('st', uniqueString(resourceGroup().id))]"},
            "resources": [
                {"type": "Microsoft.Web/sites", "apiVersion": "2022-03-01", "name": "[parameters('appName')]", "kind": "functionapp",
                 "location": "[resourceGroup().location]", "identity": {"type": "SystemAssigned"},
                 "properties": {"siteConfig": {"appSettings": [
                    {"name": "AzureWebJobsStorage", "value": "[format('DefaultEndpointsProtocol=https;AccountName={0};EndpointSuffix={1};AccountKey={2}', variables('storageName'), environment().suffixes.storage, listKeys(resourceId('Microsoft.Storage/storageAccounts', variables('storageName')), '2023-01-01').keys[0].value)]"}
                 ]}}},
                {"type": "Microsoft.Storage/storageAccounts", "apiVersion": "2023-01-01", "name": "[variables('storageName')]",
                 "location": "[resourceGroup().location]", "sku": {"name": "Standard_LRS"}, "kind": "StorageV2"}
            ],
            "outputs": {"principalId": {"type": "string", "value": "[reference(resourceId('Microsoft.Web/sites', parameters('appName')), '2022-03-01', 'Full').identity.principalId]"}}
        }"#,
        Value::Null,
        expect![[r#"
            PUT /subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg1/providers/Microsoft.Storage/storageAccounts/stmgy6tx5wjwlzu (Microsoft.Storage/storageAccounts @ 2023-01-01)
            {
              "location": "westeurope",
              "sku": {
                "name": "Standard_LRS"
              },
              "kind": "StorageV2"
            }
            PUT /subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg1/providers/Microsoft.Web/sites/fnmgy6tx5wjwlzu (Microsoft.Web/sites @ 2022-03-01)
            {
              "kind": "functionapp",
              "location": "westeurope",
              "identity": {
                "type": "SystemAssigned"
              },
              "properties": {
                "siteConfig": {
                  "appSettings": [
                    {
                      "name": "AzureWebJobsStorage",
                      "value": "DefaultEndpointsProtocol=https;AccountName=stmgy6tx5wjwlzu;EndpointSuffix=storage.localhost;AccountKey=key-of-stmgy6tx5wjwlzu"
                    }
                  ]
                }
              }
            }
            outputs {
              "principalId": {
                "type": "String",
                "value": "e90cfd02-99d4-56c9-839f-32b0d1977ea5"
              }
            }"#]],
    );
}
