//! Root context: loads and compiles the plugin configuration, hands the policy to each request.

use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{BufferType, ContextType, LogLevel};

use super::abi;
use super::http::WardenHttp;
use crate::policy::{self, Policy};

#[derive(Default)]
pub struct WardenRoot {
    /// The policy in force; replaced only by a configuration that compiles.
    policy: Option<Rc<Policy>>,
}

impl Context for WardenRoot {}

impl RootContext for WardenRoot {
    fn on_configure(&mut self, size: usize) -> bool {
        let bytes = match abi::buffer(BufferType::PluginConfiguration, 0, size) {
            Ok(b) => b,
            Err(e) => {
                abi::log(LogLevel::Error, &format!("mcp-warden: cannot read plugin configuration: {e:?}"));
                return self.policy.is_some();
            }
        };
        match policy::load(&bytes) {
            Ok(p) => {
                abi::log(LogLevel::Info, "mcp-warden: configuration loaded");
                self.policy = Some(Rc::new(p));
                true
            }
            Err(e) => {
                // Refusing makes Envoy reject this configuration; a policy already in force stays.
                abi::log(LogLevel::Error, &format!("mcp-warden: {e}; configuration refused"));
                self.policy.is_some()
            }
        }
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        let policy = self.policy.clone().unwrap_or_else(|| Rc::new(Policy::default()));
        Some(Box::new(WardenHttp::new(policy)))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}
