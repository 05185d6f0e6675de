//! [`CreateContainerReply`]: a plugin's answer to CreateContainer, with an
//! adjustment that is always there, so that comparing it says what it
//! means.

use protobuf::MessageField;

use crate::api::{
    ContainerAdjustment, ContainerEviction, ContainerUpdate, CreateContainerResponse,
};

/// One plugin's answer to CreateContainer, as
/// [`PluginHandle::create_container`](super::PluginHandle::create_container)
/// returns it.
///
/// On the wire the adjustment is an optional message: a plugin may leave it
/// out or send it empty, and `CreateContainerResponse.adjust` tells the two
/// apart (`MessageField(None)` is not `MessageField(Some(empty))`). Here both
/// become an empty [`ContainerAdjustment`], so the obvious assertion holds
/// exactly when the plugin adjusted nothing:
///
/// ```
/// use nri::api::{ContainerAdjustment, CreateContainerResponse};
/// use nri::runtime::CreateContainerReply;
///
/// let absent = CreateContainerReply::from(CreateContainerResponse::new());
/// let empty = CreateContainerReply::from(CreateContainerResponse {
///     adjust: Some(ContainerAdjustment::new()).into(),
///     ..Default::default()
/// });
/// assert_eq!(absent.adjust, Default::default());
/// assert_eq!(empty.adjust, Default::default());
/// assert!(absent.is_empty() && empty.is_empty());
///
/// let mut adjust = ContainerAdjustment::new();
/// adjust.add_annotation("a", "b");
/// let some = CreateContainerReply { adjust, ..Default::default() };
/// assert_ne!(some.adjust, Default::default());
/// ```
///
/// Fields inside the adjustment keep their protobuf meaning: a nested part
/// the plugin set, even empty (`linux: {}`), makes the adjustment differ
/// from the default.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CreateContainerReply {
    /// The plugin's adjustment of the container being created (empty when
    /// it sent none).
    pub adjust: ContainerAdjustment,
    /// Updates of other containers.
    pub update: Vec<ContainerUpdate>,
    /// Containers the plugin asked to evict (no NRI runtime acts on these).
    pub evict: Vec<ContainerEviction>,
}

impl CreateContainerReply {
    /// True when the plugin adjusted nothing, updated and evicted nothing.
    pub fn is_empty(&self) -> bool {
        *self == CreateContainerReply::default()
    }

    /// The wire message, with the adjustment present.
    pub fn into_response(self) -> CreateContainerResponse {
        CreateContainerResponse {
            adjust: MessageField::some(self.adjust),
            update: self.update,
            evict: self.evict,
            ..Default::default()
        }
    }
}

impl From<CreateContainerResponse> for CreateContainerReply {
    fn from(r: CreateContainerResponse) -> Self {
        CreateContainerReply {
            adjust: r.adjust.into_option().unwrap_or_default(),
            update: r.update,
            evict: r.evict,
        }
    }
}
